"""``CypherGuard``: decide whether a Cypher query may run, by parsing it, and bound what it may return.

The guard reads the query with a real tokenizer and an allow-list parser (see ``parser.py``), so
keywords inside strings, comments or backticked names never cause a refusal and a write can't hide
behind a comment, a second statement, a UNION branch, a subquery or an EXPLAIN/PROFILE prefix.

When the query is allowed, the returned ``query`` is the original text with a few spans spliced in
(formatting, comments and literals untouched), each reported as a note in ``reasons``:

- variable-length relationships without an upper bound get ``..max_hops`` (``-[*]->`` becomes
  ``-[*1..5]->``); bounds above ``max_hops`` are refused (see ``patterns.py``);
- the final RETURN of the query (of every UNION branch: a UNION of k branches may return up to
  k * ``row_cap`` rows before de-duplication) gets ``LIMIT row_cap`` when it has none, and a literal
  LIMIT above the cap is lowered to it;
- ``LIMIT $param`` is kept when ``params`` supplies a non-negative integer <= ``row_cap``; a larger or
  non-integer value, or no ``params`` at all (the cap could not be checked), is refused;
- ``LIMIT <expression>`` is refused: engines differ on whether they evaluate it (FalkorDB does not).

A standalone ``CALL db.labels()`` (no RETURN) is not capped: allow-listed procedures list the schema.
Checking the rewritten query again returns the same query (the rewrite is idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from maestro.core.errors import ConfigurationError
from maestro.tools.cypher._base import MAX_REASONS, Edit, GuardConfig, ReturnInfo
from maestro.tools.cypher.allowlists import DEFAULT_APOC_FUNCTIONS, DEFAULT_PROCEDURES
from maestro.tools.cypher.errors import CypherRefused, CypherSyntaxError
from maestro.tools.cypher.lexer import EOF, PARAM, tokenize, where
from maestro.tools.cypher.params import param_refusals
from maestro.tools.cypher.parser import parse

__all__ = ["MAX_QUERY_BYTES", "CypherGuard", "GuardResult"]

MAX_QUERY_BYTES = 100 * 1024
"""Queries longer than this (UTF-8) are refused before they are read."""


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The verdict: ``allowed``; ``reasons`` (every refusal, or the notes on rewrites when allowed);
    ``query`` (the rewritten query when allowed, else the original)."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    query: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``{"allowed": bool, "reasons": [str], "query": str}`` (DESIGN.md, ``maestro cypher check``)."""
        return {"allowed": self.allowed, "reasons": list(self.reasons), "query": self.query}

    def require(self) -> str:
        """The query to run; raises :class:`CypherRefused` (exit 3) with every reason when refused."""
        if not self.allowed:
            raise CypherRefused(list(self.reasons))
        return self.query


class CypherGuard:
    """Read-only Cypher guard with bounded path lengths and a row cap.

    ``procedures`` and ``apoc_functions`` are allow-lists of exact names. ``max_cartesian`` is how many
    disconnected MATCH patterns may be joined (see ``scope.py``). ``allow_extra_params`` lets ``params``
    hold values the query does not read (see ``params.py``). ``check`` never raises on bad input.
    """

    def __init__(
        self,
        max_hops: int = 5,
        row_cap: int = 1000,
        procedures: Iterable[str] = DEFAULT_PROCEDURES,
        apoc_functions: Iterable[str] = DEFAULT_APOC_FUNCTIONS,
        *,
        max_cartesian: int = 2,
        allow_extra_params: bool = False,
    ) -> None:
        for name, value in (("max_hops", max_hops), ("row_cap", row_cap), ("max_cartesian", max_cartesian)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"CypherGuard {name} must be a positive integer, got {value!r}")
        self.row_cap = row_cap
        self.allow_extra_params = allow_extra_params
        self.config = GuardConfig(
            max_hops=max_hops,
            procedures=frozenset(procedures),
            apoc_functions=frozenset(apoc_functions),
            max_cartesian=max_cartesian,
        )

    @property
    def max_hops(self) -> int:
        return self.config.max_hops

    def check(self, query: str, params: Mapping[str, Any] | None = None) -> GuardResult:
        """Allow or refuse ``query`` (and ``params`` when given); see the module docstring."""
        problem = _input_problem(query)
        if problem is not None:
            return GuardResult(False, [problem], query if isinstance(query, str) else "")
        try:
            tokens = tokenize(query)
            if tokens[0].kind == EOF:
                return GuardResult(False, ["empty query: it holds only whitespace or comments"], query)
            found = parse(query, tokens, self.config)
        except CypherSyntaxError as exc:
            return GuardResult(False, [exc.message], query)
        except RecursionError:
            return GuardResult(False, ["the query nests too deeply to check"], query)
        refusals = list(found.refusals)
        if params is not None:
            used: dict[str, int] = {}
            for token in tokens:
                if token.kind == PARAM:
                    used.setdefault(token.text, token.start)
            refusals += param_refusals(
                used,
                params,
                allow_extra=self.allow_extra_params,
                where=lambda offset: where(query, offset),
            )
        notes = list(found.notes)
        edits = list(found.edits)
        for info in found.returns:
            self._cap(query, info, params, refusals=refusals, notes=notes, edits=edits)
        if refusals:
            if found.truncated or len(refusals) > MAX_REASONS:
                refusals = [*refusals[:MAX_REASONS], "further problems were not listed"]
            return GuardResult(False, refusals, query)
        return GuardResult(True, notes, _splice(query, edits))

    def _cap(
        self,
        query: str,
        info: ReturnInfo,
        params: Mapping[str, Any] | None,
        *,
        refusals: list[str],
        notes: list[str],
        edits: list[Edit],
    ) -> None:
        """Apply the row cap to one final RETURN (see the module docstring)."""
        cap, at = self.row_cap, where(query, info.keyword.start)
        limit = info.limit
        if limit is None:
            edits.append(Edit(info.end, info.end, f" LIMIT {cap}"))
            notes.append(f"appended LIMIT {cap} to the RETURN at {at} (row cap)")
        elif info.limit_kind == "literal":
            value = _integer(limit.text)
            if value is None:
                refusals.append(f"LIMIT {limit.text} at {where(query, limit.start)} is not an integer")
            elif value > cap:
                edits.append(Edit(limit.start, limit.end, str(cap)))
                notes.append(f"lowered LIMIT {limit.text} of the RETURN at {at} to the row cap {cap}")
        elif info.limit_kind == "param":
            refusal = _param_limit_refusal(limit.text, params, cap)
            if refusal is not None:
                refusals.append(f"{refusal} (RETURN at {at})")
        else:
            refusals.append(
                f"LIMIT at {where(query, limit.start)} must be an integer literal or a $parameter, not an "
                f"expression: write LIMIT {cap} or less"
            )


def _param_limit_refusal(name: str, params: Mapping[str, Any] | None, cap: int) -> str | None:
    if params is None:
        return (
            f"LIMIT ${name} can't be checked against the row cap {cap} without parameters: supply "
            f"params, or write a literal LIMIT of at most {cap}"
        )
    if not isinstance(params, Mapping) or name not in params:
        return None  # reported by the parameter policy
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"LIMIT ${name} must be a non-negative integer, got {value!r}"
    if value > cap:
        return f"LIMIT ${name} = {value} is over the row cap {cap}: pass at most {cap}"
    return None


def _input_problem(query: object) -> str | None:
    if not isinstance(query, str):
        return f"the query must be a string, not {type(query).__name__}"
    if len(query) > MAX_QUERY_BYTES:
        return f"the query is {len(query)} characters, over the {MAX_QUERY_BYTES}-byte limit"
    nul = query.find("\0")
    if nul != -1:
        return f"the query contains a NUL byte at offset {nul}: remove it"
    try:
        size = len(query.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return f"the query is not valid Unicode: lone surrogate at offset {exc.start}"
    if size > MAX_QUERY_BYTES:
        return f"the query is {size} bytes, over the {MAX_QUERY_BYTES}-byte limit"
    if not query.strip():
        return "empty query"
    return None


def _integer(text: str) -> int | None:
    lowered = text.lower()
    if len(text) > 40:
        return 10**40
    if lowered.startswith("0x"):
        return int(lowered[2:], 16)
    if lowered.startswith("0o"):
        return int(lowered[2:], 8)
    return int(text) if text.isdigit() else None


def _splice(query: str, edits: list[Edit]) -> str:
    if not edits:
        return query
    pieces: list[str] = []
    position = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        pieces.append(query[position : edit.start])
        pieces.append(edit.text)
        position = edit.end
    pieces.append(query[position:])
    return "".join(pieces)

"""The parser's cursor: tokens, lookahead, bracket matching, and what a parse collects.

A parse never stops at the first problem it can recover from: a refused clause is recorded and skipped
to the next clause keyword, so one pass lists every reason (up to :data:`MAX_REASONS`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NoReturn

from maestro.tools.cypher.errors import CypherSyntaxError
from maestro.tools.cypher.keywords import CLAUSE_STARTS
from maestro.tools.cypher.lexer import EOF, IDENT, OP, PARAM, QIDENT, STRING, Token, where
from maestro.tools.cypher.scope import PartInfo, Scope

__all__ = ["MAX_DEPTH", "MAX_REASONS", "Edit", "Findings", "GuardConfig", "ParserBase", "ReturnInfo", "show"]

MAX_DEPTH = 40
"""Deepest nesting of brackets, expressions and subqueries the parser follows (then: refused)."""
MAX_REASONS = 20
"""Refusal reasons listed per query; the rest are summarised in one line."""

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
# After these, a clause keyword is a name (n.create, :Delete, ON CREATE, STARTS WITH, LOAD CSV WITH ...).
_NOT_A_CLAUSE_AFTER = frozenset({".", ":", "ON", "DETACH", "NODETACH", "STARTS", "ENDS", "CSV", "|", "&"})


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The limits and allow-lists one parse applies."""

    max_hops: int
    procedures: frozenset[str]
    apoc_functions: frozenset[str]
    max_cartesian: int


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``query[start:end]`` with ``text`` (an insertion when ``start == end``)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class ReturnInfo:
    """A RETURN or WITH clause: where it ends, its LIMIT (none, literal, param, expression), its names."""

    keyword: Token
    end: int
    limit: Token | None
    limit_kind: str
    names: tuple[str, ...] = ()


@dataclass(slots=True)
class Findings:
    """What one parse found: refusals, notes and edits for rewrites, and the top-level final RETURNs."""

    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    returns: list[ReturnInfo] = field(default_factory=list)
    truncated: bool = False


def show(token: Token) -> str:
    """A token as a message names it."""
    if token.kind == EOF:
        return "the end of the query"
    if token.kind == STRING:
        return f"string {token.text[:40]}{'...' if len(token.text) > 40 else ''}"
    if token.kind == QIDENT:
        return f"`{token.text}`"
    if token.kind == PARAM:
        return f"${token.text}"
    return repr(token.text)


class ParserBase(ABC):
    """Cursor state and helpers shared by the expression, pattern and clause parsers."""

    def __init__(self, source: str, tokens: list[Token], config: GuardConfig) -> None:
        self.source = source
        end = tokens[-1]
        # Padding: lookahead up to three tokens past the end reads EOF instead of raising IndexError.
        self.toks = [*tokens, end, end, end]
        self.closing = _match_brackets(self, tokens)
        self.i = 0
        self.depth = 0
        self.config = config
        self.found = Findings()
        self.scope = Scope.inside(set())

    # -- positions and messages -------------------------------------------------------------------
    def where(self, offset: int) -> str:
        return where(self.source, offset)

    def error(self, message: str, token: Token | None = None) -> CypherSyntaxError:
        token = token or self.toks[self.i]
        return CypherSyntaxError(f"{message} at {self.where(token.start)}", offset=token.start)

    def fail(self, message: str, token: Token | None = None) -> NoReturn:
        raise self.error(message, token)

    def refuse(self, message: str) -> None:
        """Record one refusal reason (the message already says where)."""
        if len(self.found.refusals) >= MAX_REASONS:
            self.found.truncated = True
            return
        self.found.refusals.append(message)

    @property
    def stopped(self) -> bool:
        return self.found.truncated

    # -- cursor -----------------------------------------------------------------------------------
    def at_op(self, op: str) -> bool:
        token = self.toks[self.i]
        return token.kind == OP and token.upper == op

    def at_word(self, word: str) -> bool:
        token = self.toks[self.i]
        return token.kind == IDENT and token.upper == word

    def accept_op(self, op: str) -> bool:
        token = self.toks[self.i]
        if token.kind == OP and token.upper == op:
            self.i += 1
            return True
        return False

    def accept_word(self, word: str) -> bool:
        token = self.toks[self.i]
        if token.kind == IDENT and token.upper == word:
            self.i += 1
            return True
        return False

    def expect_op(self, op: str, context: str = "") -> Token:
        token = self.toks[self.i]
        if token.kind == OP and token.upper == op:
            self.i += 1
            return token
        self.fail(f"expected {op!r}{context} but found {show(token)}")

    def expect_word(self, word: str, context: str = "") -> Token:
        token = self.toks[self.i]
        if token.kind == IDENT and token.upper == word:
            self.i += 1
            return token
        self.fail(f"expected {word}{context} but found {show(token)}")

    def name(self, what: str = "a name") -> str:
        token = self.toks[self.i]
        if token.kind in (IDENT, QIDENT):
            self.i += 1
            return token.text
        self.fail(f"expected {what} but found {show(token)}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"the query nests deeper than {MAX_DEPTH} levels")

    def at_clause_start(self) -> bool:
        token = self.toks[self.i]
        return token.kind == IDENT and token.upper in CLAUSE_STARTS

    def skip_clause(self, index: int) -> None:
        """Move to the next clause keyword, ';', closing bracket or the end, jumping over brackets."""
        toks, closing = self.toks, self.closing
        while True:
            token = toks[index]
            if token.kind == EOF:
                break
            if token.kind == OP:
                if token.upper in _OPENERS:
                    index = closing[index] + 1
                    continue
                if token.upper in _CLOSERS or token.upper == ";":
                    break
            elif (
                token.kind == IDENT
                and token.upper in CLAUSE_STARTS
                and toks[index - 1].upper not in _NOT_A_CLAUSE_AFTER
            ):
                break
            index += 1
        self.i = index

    def pattern_follows(self, open_index: int) -> bool:
        """Is the bracket group opening at ``open_index`` a node pattern followed by a relationship?"""
        toks = self.toks
        after = self.closing[open_index] + 1
        first, second = toks[after], toks[after + 1]
        if first.kind != OP or second.kind != OP:
            return False
        if first.upper == "-":
            return second.upper in ("[", "-")
        if first.upper == "<" and second.upper == "-":
            return toks[after + 2].kind == OP and toks[after + 2].upper in ("[", "-")
        return False

    # -- implemented by the mixins (ExpressionMixin, PatternMixin) and CypherParser ----------------
    @abstractmethod
    def expression(self, min_prec: int = 1) -> None:
        """Parse one expression (precedence climbing from ``min_prec``)."""

    @abstractmethod
    def map_literal(self) -> None:
        """Parse ``{key: expression, ...}``."""

    @abstractmethod
    def label_expression(self) -> None:
        """Parse a label expression after ``:`` (``A|B``, ``!A``, ``%``)."""

    @abstractmethod
    def pattern_element(self) -> PartInfo:
        """Parse one path pattern; return what the scope check needs."""

    @abstractmethod
    def pattern_list(self) -> list[PartInfo]:
        """Parse comma-separated path patterns."""

    @abstractmethod
    def query(self, *, top: bool, require_return: bool) -> tuple[str, ...]:
        """Parse a (sub)query; return the names it projects."""


def _match_brackets(parser: ParserBase, tokens: list[Token]) -> list[int]:
    """``closing[i]`` is the index of the bracket closing the one opened at ``i`` (else -1)."""
    closing = [-1] * len(tokens)
    stack: list[int] = []
    for index, token in enumerate(tokens):
        if token.kind != OP:
            continue
        upper = token.upper
        if upper in _OPENERS:
            stack.append(index)
            if len(stack) > MAX_DEPTH:
                parser.fail(f"brackets nest deeper than {MAX_DEPTH} levels", token)
        elif upper in _CLOSERS:
            if not stack or _OPENERS[tokens[stack[-1]].upper] != upper:
                parser.fail(f"unbalanced {upper!r}", token)
            closing[stack.pop()] = index
    if stack:
        opener = tokens[stack[-1]]
        parser.fail(f"{opener.upper!r} is never closed", opener)
    return closing

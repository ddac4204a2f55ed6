"""Graph patterns: nodes, relationships, label expressions, and the variable-length bound.

A variable-length relationship (``-[*]->``, ``-[:R*2..]->``, ``-[*..9]->``) must stay within
``max_hops``:

- no upper bound and a lower bound <= ``max_hops``: rewritten in place to ``*<lower>..<max_hops>``
  (lower bound 1 when none is written), with a note;
- an upper bound above ``max_hops``, an exact length above it, or a lower bound above it: refused.

``shortestPath``/``allShortestPaths`` patterns go through the same relationship parser, so they are
bounded the same way. Quantified path patterns (``((a)-->(b)){1,3}``, ``-->+``) are refused.
"""

from __future__ import annotations

from maestro.tools.cypher._base import Edit, ParserBase, show
from maestro.tools.cypher.lexer import IDENT, NUMBER, OP, PARAM, QIDENT, Token
from maestro.tools.cypher.scope import PartInfo

__all__ = ["PatternMixin"]

_SHORTEST = frozenset({"SHORTESTPATH", "ALLSHORTESTPATHS"})
_MAX_DIGITS = 18


def _decimal(token: Token) -> int | None:
    """The value of a plain decimal integer literal (capped so huge ones stay cheap), else ``None``."""
    text = token.text
    if not text.isdigit() or not text.isascii():
        return None
    return int(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS


class PatternMixin(ParserBase):
    def pattern_list(self) -> list[PartInfo]:
        """Comma-separated pattern parts, as in MATCH."""
        parts = [self._pattern_part()]
        while self.accept_op(","):
            parts.append(self._pattern_part())
        return parts

    def _pattern_part(self) -> PartInfo:
        toks = self.toks
        token = toks[self.i]
        path_name = None
        if token.kind in (IDENT, QIDENT) and toks[self.i + 1].kind == OP and toks[self.i + 1].upper == "=":
            path_name = token.text
            self.i += 2
            token = toks[self.i]
        if token.kind == IDENT and token.upper in _SHORTEST and toks[self.i + 1].upper == "(":
            self.i += 2
            part = self.pattern_element()
            self.expect_op(")", f" to close {token.text}(")
        else:
            part = self.pattern_element()
        if path_name is not None:
            part.names.add(path_name)
        return part

    def pattern_element(self) -> PartInfo:
        """``(node)`` followed by any number of ``-[rel]-(node)`` steps."""
        self.enter()
        try:
            toks = self.toks
            first = toks[self.i]
            if first.upper == "(" and toks[self.i + 1].upper == "(":
                self.fail("parenthesised and quantified path patterns are not supported")
            names: set[str] = set()
            bare = self._node(names)
            steps = 0
            while True:
                token = toks[self.i]
                if token.kind != OP:
                    break
                if token.upper == "-" or (token.upper == "<" and toks[self.i + 1].upper == "-"):
                    self._relationship(names)
                    self._node(names)
                    steps += 1
                else:
                    break
            return PartInfo(names=names, bare=bare and steps == 0, token=first)
        finally:
            self.depth -= 1

    def _node(self, names: set[str]) -> bool:
        """``(var:Label {props} WHERE pred)``; True when it is a bare ``(var)`` or ``()``."""
        self.expect_op("(", " to start a node pattern")
        token = self.toks[self.i]
        if token.kind == QIDENT or (token.kind == IDENT and token.upper != "WHERE"):
            names.add(token.text)
            self.i += 1
        bare = True
        if self.at_op(":"):
            self.label_expression()
            bare = False
        if self._properties():
            bare = False
        if self.accept_word("WHERE"):
            self.expression()
            bare = False
        self.expect_op(")", " to close a node pattern")
        return bare

    def _properties(self) -> bool:
        token = self.toks[self.i]
        if token.kind == PARAM:
            self.i += 1
            return True
        if token.kind == OP and token.upper == "{":
            self.map_literal()
            return True
        return False

    def _relationship(self, names: set[str]) -> None:
        """``-[var:TYPE*1..3 {props} WHERE pred]->`` in either direction, or ``--``."""
        self.accept_op("<")
        self.expect_op("-", " in a relationship pattern")
        if self.accept_op("["):
            token = self.toks[self.i]
            if token.kind == QIDENT or (token.kind == IDENT and token.upper != "WHERE"):
                names.add(token.text)
                self.i += 1
            if self.at_op(":"):
                self.label_expression()
            if self.at_op("*"):
                self._var_length()
            self._properties()
            if self.accept_word("WHERE"):
                self.expression()
            self.expect_op("]", " to close a relationship pattern")
        self.expect_op("-", " in a relationship pattern")
        self.accept_op(">")
        after = self.toks[self.i]
        if after.kind == OP and after.upper in ("{", "+", "*"):
            self.fail(
                "quantified path patterns ({m,n}, +, *) are not supported: use a variable-length "
                f"relationship -[*1..{self.config.max_hops}]-"
            )

    def _var_length(self) -> None:
        toks = self.toks
        star = toks[self.i]
        self.i += 1
        low = high = None
        ranged = False
        if toks[self.i].kind == NUMBER:
            low = toks[self.i]
            self.i += 1
        if self.accept_op(".."):
            ranged = True
            if toks[self.i].kind == NUMBER:
                high = toks[self.i]
                self.i += 1
        if not ranged:
            high = low  # *n is exactly n hops; a bare * has no upper bound
        self._bound(star, low, high, end=toks[self.i - 1].end)

    def _bound(self, star: Token, low: Token | None, high: Token | None, *, end: int) -> None:
        max_hops = self.config.max_hops
        original = self.source[star.start : end]
        where = self.where(star.start)
        low_value = 1 if low is None else _decimal(low)
        high_value = None if high is None else _decimal(high)
        if low_value is None or (high is not None and high_value is None):
            bad = low if low_value is None else high
            self.fail(f"variable-length bounds must be decimal integers, not {show(bad or star)}", bad)
        if high_value is not None:
            if high_value > max_hops:
                self.refuse(
                    f"variable-length relationship {original!r} at {where} allows more hops than max_hops "
                    f"{max_hops}: ask for at most *..{max_hops}"
                )
            return
        if low_value > max_hops:
            self.refuse(
                f"variable-length relationship {original!r} at {where} needs more hops than max_hops "
                f"{max_hops}: ask for at most *..{max_hops}"
            )
            return
        bounded = f"*{low.text if low is not None else 1}..{max_hops}"
        self.found.edits.append(Edit(star.start, end, bounded))
        self.found.notes.append(
            f"bounded variable-length relationship {original!r} at {where} to {bounded!r} "
            f"(max_hops {max_hops})"
        )

    def label_expression(self) -> None:
        """``:A:B``, ``:A|B``, ``:A&B``, ``:!A``, ``:%``, ``:(A|B)&C`` (labels and relationship types)."""
        self.i += 1  # ':'
        self._label_or()
        while self.accept_op(":"):
            self._label_or()

    def _label_or(self) -> None:
        self._label_and()
        while self.accept_op("|"):
            self.accept_op(":")
            self._label_and()

    def _label_and(self) -> None:
        self._label_atom()
        while self.accept_op("&"):
            self._label_atom()

    def _label_atom(self) -> None:
        while self.accept_op("!"):
            pass
        token = self.toks[self.i]
        if token.kind in (IDENT, QIDENT) or (token.kind == OP and token.upper == "%"):
            self.i += 1
        elif token.kind == OP and token.upper == "(":
            self.i += 1
            self._label_or()
            self.expect_op(")", " in a label expression")
        else:
            self.fail(f"expected a label or type but found {show(token)}")

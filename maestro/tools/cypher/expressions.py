"""Cypher expressions: operators by precedence climbing, then literals, lists, maps, CASE, functions,
comprehensions and subquery expressions (``EXISTS``/``COUNT``/``COLLECT { ... }``, checked as queries).

Nothing is built: the parser only checks that the text is an expression it understands, calls only
allowed functions, and records the parameters it reads.
"""

from __future__ import annotations

from maestro.tools.cypher._base import ParserBase, show
from maestro.tools.cypher.allowlists import function_refusal
from maestro.tools.cypher.errors import CypherSyntaxError
from maestro.tools.cypher.keywords import NEVER_NAMES, forbidden_clause
from maestro.tools.cypher.lexer import IDENT, NUMBER, OP, PARAM, QIDENT, STRING

__all__ = ["ExpressionMixin"]

# Binding power of binary operators; NOT (prefix) sits at 4, between AND and the comparisons.
_BINARY: dict[str, int] = {
    "OR": 1, "XOR": 2, "AND": 3,
    "=": 5, "<>": 5, "!=": 5, "<": 5, ">": 5, "<=": 5, ">=": 5, "=~": 5,
    "IN": 5, "CONTAINS": 5, "STARTS": 5, "ENDS": 5, "IS": 5,
    "+": 6, "-": 6, "*": 7, "/": 7, "%": 7, "^": 8,
}  # fmt: skip
_WORD_OPERATORS = frozenset({"OR", "XOR", "AND", "IN", "CONTAINS", "STARTS", "ENDS", "IS"})
_LITERAL_WORDS = frozenset({"TRUE", "FALSE", "NULL"})
_SUBQUERY_WORDS = frozenset({"EXISTS", "COUNT", "COLLECT"})
_QUANTIFIERS = frozenset({"all", "any", "none", "single"})
_SHORTEST = frozenset({"shortestpath", "allshortestpaths"})
_NAMES = (IDENT, QIDENT)


class ExpressionMixin(ParserBase):
    def expression(self, min_prec: int = 1) -> None:
        """Parse one expression whose operators bind at least ``min_prec``."""
        self.enter()
        try:
            toks = self.toks
            token = toks[self.i]
            if token.kind == IDENT and token.upper == "NOT":
                while self.accept_word("NOT"):
                    pass
                self.expression(5)
            else:
                self._operand()
            while True:
                token = toks[self.i]
                prec = _BINARY.get(token.upper)
                if prec is None or prec < min_prec:
                    return
                if (token.kind == IDENT) != (token.upper in _WORD_OPERATORS):
                    return
                self.i += 1
                if token.upper == "IS":
                    self.accept_word("NOT")
                    self.expect_word("NULL", " after IS [NOT]")
                    continue
                if token.upper in ("STARTS", "ENDS"):
                    self.expect_word("WITH", f" after {token.upper}")
                self.expression(prec + 1)
        finally:
            self.depth -= 1

    def _operand(self) -> None:
        toks = self.toks
        while toks[self.i].kind == OP and toks[self.i].upper in ("-", "+"):
            self.i += 1
        self._atom()
        while True:
            token = toks[self.i]
            if token.kind != OP:
                return
            if token.upper == ".":
                self.i += 1
                self.name("a property name after '.'")
            elif token.upper == "[":
                self._subscript()
            elif token.upper == ":":
                self.label_expression()
            else:
                return

    def _atom(self) -> None:
        toks = self.toks
        token = toks[self.i]
        kind = token.kind
        if kind == STRING or kind == NUMBER:
            self.i += 1
        elif kind == PARAM:
            self.i += 1
        elif kind == OP:
            self._bracketed_atom()
        elif kind == QIDENT:
            self._named_atom()
        elif kind == IDENT:
            upper = token.upper
            if upper in _LITERAL_WORDS:
                self.i += 1
            elif upper == "CASE":
                self._case()
            elif upper in _SUBQUERY_WORDS and toks[self.i + 1].upper == "{":
                self._subquery_expression(upper)
            else:
                refused = forbidden_clause(toks, self.i) if upper in NEVER_NAMES else None
                if refused is not None:
                    label, why = refused
                    raise CypherSyntaxError(
                        f"{label} at {self.where(token.start)} {why}: only read-only queries are allowed",
                        offset=token.start,
                    )
                self._named_atom()
        else:
            self.fail(f"expected an expression but found {show(token)}")

    def _bracketed_atom(self) -> None:
        token = self.toks[self.i]
        if token.upper == "(":
            if self.pattern_follows(self.i):
                self.pattern_element()
                return
            self.i += 1
            self.expression()
            self.expect_op(")")
        elif token.upper == "[":
            self._list()
        elif token.upper == "{":
            self.map_literal()
        else:
            self.fail(f"expected an expression but found {show(token)}")

    def _named_atom(self) -> None:
        """A variable (maybe with a map projection) or a function call ``ns.name(...)``."""
        toks = self.toks
        end = self.i
        while toks[end + 1].upper == "." and toks[end + 1].kind == OP and toks[end + 2].kind in _NAMES:
            end += 2
        if toks[end + 1].kind == OP and toks[end + 1].upper == "(":
            self._function_call(end + 1)
            return
        self.i += 1
        if self.at_op("{"):
            self._map_projection()

    def _function_call(self, paren: int) -> None:
        toks = self.toks
        first = toks[self.i]
        name = ".".join(toks[k].text for k in range(self.i, paren, 2))
        lowered = name.lower()
        self.i = paren + 1
        if lowered in _SHORTEST:
            self.pattern_element()
            self.expect_op(")", f" to close {name}(")
            return
        refusal = function_refusal(name, self.config.apoc_functions)
        if refusal is not None:
            self.refuse(f"{refusal} (at {self.where(first.start)})")
        if lowered in _QUANTIFIERS and toks[self.i].kind in _NAMES and toks[self.i + 1].upper == "IN":
            self._iteration(where_allowed=True, bar=False)
        elif lowered == "reduce":
            self._reduce()
        elif lowered == "count" and self.accept_op("*"):
            pass
        else:
            self.accept_word("DISTINCT")
            if not self.at_op(")"):
                self.expression()
                while self.accept_op(","):
                    self.expression()
        self.expect_op(")", f" to close {name}(")

    def _iteration(self, *, where_allowed: bool, bar: bool) -> None:
        """``x IN list [WHERE pred] [| expr]`` inside a comprehension or a quantifier."""
        self.name("a variable")
        self.expect_word("IN")
        self.expression()
        if where_allowed and self.accept_word("WHERE"):
            self.expression()
        if bar and self.accept_op("|"):
            self.expression()

    def _reduce(self) -> None:
        self.name("the accumulator of reduce()")
        self.expect_op("=", " in reduce()")
        self.expression()
        self.expect_op(",", " in reduce()")
        self.name("a variable")
        self.expect_word("IN", " in reduce()")
        self.expression()
        self.expect_op("|", " in reduce()")
        self.expression()

    def _subscript(self) -> None:
        self.i += 1  # [
        if self.accept_op(".."):
            if not self.at_op("]"):
                self.expression()
        else:
            self.expression()
            if self.accept_op("..") and not self.at_op("]"):
                self.expression()
        self.expect_op("]")

    def _list(self) -> None:
        toks, i = self.toks, self.i
        first = toks[i + 1]
        if first.kind in _NAMES and toks[i + 2].kind == IDENT and toks[i + 2].upper == "IN":
            self.i += 1
            self._iteration(where_allowed=True, bar=True)
        elif self._pattern_comprehension_at(i + 1):
            self.i += 1
            if first.kind in _NAMES:
                self.i += 2  # path variable and '='
            self.pattern_element()
            if self.accept_word("WHERE"):
                self.expression()
            self.expect_op("|", " in a pattern comprehension")
            self.expression()
        else:
            self.i += 1
            if not self.at_op("]"):
                self.expression()
                while self.accept_op(","):
                    self.expression()
        self.expect_op("]")

    def _pattern_comprehension_at(self, index: int) -> bool:
        toks = self.toks
        if toks[index].kind in _NAMES and toks[index + 1].upper == "=" and toks[index + 1].kind == OP:
            index += 2
        token = toks[index]
        return token.kind == OP and token.upper == "(" and self.pattern_follows(index)

    def map_literal(self) -> None:
        """``{key: expr, ...}``."""
        self.expect_op("{")
        if self.accept_op("}"):
            return
        while True:
            self.name("a property key")
            self.expect_op(":", " after a property key")
            self.expression()
            if self.accept_op("}"):
                return
            self.expect_op(",", " or '}' in a map")

    def _map_projection(self) -> None:
        self.i += 1  # {
        if self.accept_op("}"):
            return
        while True:
            if self.accept_op("."):
                if not self.accept_op("*"):
                    self.name("a property name")
            else:
                self.name("a map projection item")
                if self.accept_op(":"):
                    self.expression()
            if self.accept_op("}"):
                return
            self.expect_op(",", " or '}' in a map projection")

    def _case(self) -> None:
        self.i += 1  # CASE
        if not self.at_word("WHEN"):
            self.expression()
        if not self.at_word("WHEN"):
            self.fail(f"expected WHEN in CASE but found {show(self.toks[self.i])}")
        while self.accept_word("WHEN"):
            self.expression()
            self.expect_word("THEN", " in CASE")
            self.expression()
        if self.accept_word("ELSE"):
            self.expression()
        self.expect_word("END", " to close CASE")

    def _subquery_expression(self, kind: str) -> None:
        """``EXISTS { ... }``, ``COUNT { ... }``, ``COLLECT { ... }``: a full query or a pattern."""
        self.i += 2  # keyword and '{'
        if self.at_clause_start():
            self.query(top=False, require_return=kind == "COLLECT")
        else:
            self.pattern_list()
            if self.accept_word("WHERE"):
                self.expression()
        self.expect_op("}", f" to close {kind} {{ ... }}")

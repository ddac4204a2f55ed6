"""The clause parser: an allow-list of read-only Cypher, one statement, every refusal with a reason.

Grammar accepted (anything else is refused, naming the token and where it is)::

    statement   := [EXPLAIN | PROFILE] query [';']
    query       := single (UNION [ALL | DISTINCT] single)*
    single      := clause+            -- ends with RETURN, or is one standalone CALL procedure
    clause      := [OPTIONAL] MATCH patterns [WHERE expr]
                 | UNWIND expr AS name
                 | WITH [DISTINCT] items [ORDER BY ...] [SKIP expr] [LIMIT expr] [WHERE expr]
                 | RETURN [DISTINCT] items [ORDER BY ...] [SKIP expr] [LIMIT expr]
                 | CALL [(names | *)] { query }             -- checked recursively; IN TRANSACTIONS refused
                 | CALL proc.name[(args)] [YIELD * | items [WHERE expr]]   -- allow-listed procedures only

Write and administration clauses (CREATE, MERGE, SET, DELETE, DETACH DELETE, REMOVE, FOREACH,
LOAD CSV, USE, DROP, SHOW, GRANT, DENY, REVOKE, ALTER, START/STOP, TERMINATE, ...) are refused wherever
they appear: top level, UNION branches, ``CALL { }`` bodies, ``EXISTS``/``COUNT``/``COLLECT`` subqueries.
"""

from __future__ import annotations

from maestro.tools.cypher._base import Findings, GuardConfig, ReturnInfo, show
from maestro.tools.cypher.allowlists import procedure_refusal
from maestro.tools.cypher.errors import CypherSyntaxError
from maestro.tools.cypher.expressions import ExpressionMixin
from maestro.tools.cypher.keywords import forbidden_clause
from maestro.tools.cypher.lexer import EOF, IDENT, NUMBER, OP, PARAM, QIDENT, Token
from maestro.tools.cypher.patterns import PatternMixin
from maestro.tools.cypher.scope import Scope

__all__ = ["parse"]

_READ_KINDS = frozenset({"MATCH", "WITH", "RETURN", "UNWIND", "CALL", "PROCEDURE"})
_ORDER_WORDS = ("ASC", "ASCENDING", "DESC", "DESCENDING")
_ALLOWED = "MATCH, OPTIONAL MATCH, WITH, UNWIND, CALL, RETURN and UNION"


def parse(source: str, tokens: list[Token], config: GuardConfig) -> Findings:
    """Check a tokenized query; raises :class:`CypherSyntaxError` only for unbalanced brackets."""
    parser = CypherParser(source, tokens, config)
    parser.statement()
    return parser.found


class CypherParser(PatternMixin, ExpressionMixin):
    def statement(self) -> None:
        if self.toks[self.i].upper in ("EXPLAIN", "PROFILE") and self.toks[self.i].kind == IDENT:
            self.i += 1
        top = True
        while not self.stopped:
            self.query(top=top, require_return=True)
            token = self.toks[self.i]
            if token.kind == EOF:
                return
            if token.kind == OP and token.upper == ";":
                self.i += 1
                following = self.toks[self.i]
                if following.kind == EOF:
                    return
                self.refuse(
                    f"a second statement starts at {self.where(following.start)}: only one statement "
                    "is allowed per query"
                )
                top = False
                continue
            self.refuse(f"unexpected {show(token)} at {self.where(token.start)}")
            return

    def query(self, *, top: bool, require_return: bool) -> tuple[str, ...]:
        """Parse ``single (UNION single)*``; returns the names the last RETURN projects."""
        self.enter()
        outer = self.scope
        try:
            names = self._single(cap=top, standalone=top, require_return=require_return, bound=outer.bound)
            while self.at_word("UNION"):
                self.i += 1
                if not self.accept_word("ALL"):
                    self.accept_word("DISTINCT")
                names = self._single(
                    cap=top, standalone=False, require_return=require_return, bound=outer.bound
                )
            return names
        finally:
            self.scope = outer
            self.depth -= 1

    def _single(
        self, *, cap: bool, standalone: bool, require_return: bool, bound: set[str]
    ) -> tuple[str, ...]:
        """One query part. ``cap``: its final RETURN gets the row cap (every top-level UNION branch);
        ``standalone``: it may be a lone ``CALL proc()`` without RETURN (a whole top-level query only)."""
        self.scope = scope = Scope.inside(bound)
        toks = self.toks
        first = toks[self.i]
        count, last = 0, ""
        names: tuple[str, ...] = ()
        before = len(self.found.refusals)
        while not self.stopped:
            token = toks[self.i]
            if token.kind == EOF or (token.kind == OP and token.upper in (";", "}")) or self.at_word("UNION"):
                break
            start = self.i
            try:
                kind, info = self._clause(token, cap=cap)
            except CypherSyntaxError as exc:
                self.refuse(exc.message)
                self.skip_clause(start + 1)
                kind, info = "ERROR", None
            if last == "RETURN" and kind in _READ_KINDS:
                self.refuse(
                    f"RETURN must be the last clause, but {show(token)} follows at {self.where(token.start)}"
                )
            if info is not None:
                names = info.names
            count, last = count + 1, kind
        self._close_group(scope)
        end = toks[self.i]
        if count == 0:
            self.refuse(f"expected a clause ({_ALLOWED}) but found {show(end)} at {self.where(end.start)}")
        elif (
            require_return
            and last != "RETURN"
            and len(self.found.refusals) == before
            and not (standalone and count == 1 and last == "PROCEDURE" and not self.at_word("UNION"))
        ):
            self.refuse(f"the query starting at {self.where(first.start)} must end with RETURN")
        return names

    def _clause(self, token: Token, *, cap: bool) -> tuple[str, ReturnInfo | None]:
        if token.kind != IDENT:
            self.fail(f"expected a clause ({_ALLOWED}) but found {show(token)}")
        keyword = token.upper
        if keyword == "MATCH" or (keyword == "OPTIONAL" and self.toks[self.i + 1].upper == "MATCH"):
            self.i += 2 if keyword == "OPTIONAL" else 1
            parts = self.pattern_list()
            if self.accept_word("WHERE"):
                self.expression()
            self.scope.add_match(parts, token)
            return "MATCH", None
        if keyword == "WITH":
            self._close_group(self.scope)
            return "WITH", self._projection(is_return=False)
        if keyword == "RETURN":
            self._close_group(self.scope)
            info = self._projection(is_return=True)
            if cap:
                self.found.returns.append(info)
            return "RETURN", info
        if keyword == "UNWIND":
            self.i += 1
            self.expression()
            self.expect_word("AS", " in UNWIND")
            self.scope.bind(self.name("a variable after AS"))
            return "UNWIND", None
        if keyword == "CALL":
            return self._call(token), None
        refused = forbidden_clause(self.toks, self.i)
        if refused is not None:
            label, why = refused
            self.refuse(f"{label} at {self.where(token.start)} {why}: only read-only queries are allowed")
            self.skip_clause(self.i + 1)
            return "REFUSED", None
        self.fail(f"unrecognised clause {show(token)}: the guard allows {_ALLOWED}")

    def _close_group(self, scope: Scope) -> None:
        problem = scope.close_group(self.config.max_cartesian)
        if problem is not None:
            message, match = problem
            self.refuse(f"{message} (MATCH at {self.where(match.start)})")

    def _projection(self, *, is_return: bool) -> ReturnInfo:
        toks = self.toks
        keyword = toks[self.i]
        self.i += 1
        self.accept_word("DISTINCT")
        names: list[str] = []
        while True:
            if not self.accept_op("*"):
                start = self.i
                self.expression()
                if self.accept_word("AS"):
                    names.append(self.name("an alias after AS"))
                elif self.i == start + 1 and toks[start].kind in (IDENT, QIDENT):
                    names.append(toks[start].text)
            if not self.accept_op(","):
                break
        for name in names:
            self.scope.bind(name)
        if self.accept_word("ORDER"):
            self.expect_word("BY", " after ORDER")
            while True:
                self.expression()
                if toks[self.i].kind == IDENT and toks[self.i].upper in _ORDER_WORDS:
                    self.i += 1
                if not self.accept_op(","):
                    break
        if self.accept_word("SKIP") or self.accept_word("OFFSET"):
            self.expression()
        limit, limit_kind = None, "none"
        if self.accept_word("LIMIT"):
            start = self.i
            self.expression()
            limit = toks[start]
            single = self.i == start + 1
            limit_kind = (
                "literal"
                if single and limit.kind == NUMBER
                else "param"
                if single and limit.kind == PARAM
                else "expression"
            )
        if not is_return and self.accept_word("WHERE"):
            self.expression()
        return ReturnInfo(keyword, toks[self.i - 1].end, limit, limit_kind, tuple(names))

    def _call(self, keyword: Token) -> str:
        toks = self.toks
        self.i += 1
        token = toks[self.i]
        if token.kind == OP and token.upper in ("(", "{"):
            return self._call_subquery(keyword)
        if token.kind not in (IDENT, QIDENT):
            self.fail(f"expected a procedure name or '{{' after CALL but found {show(token)}")
        parts = [token.text]
        self.i += 1
        while self.at_op(".") and toks[self.i + 1].kind in (IDENT, QIDENT):
            parts.append(toks[self.i + 1].text)
            self.i += 2
        name = ".".join(parts)
        refusal = procedure_refusal(name, self.config.procedures)
        if refusal is not None:
            self.refuse(f"{refusal} (at {self.where(token.start)})")
        if self.accept_op("("):
            if not self.at_op(")"):
                self.expression()
                while self.accept_op(","):
                    self.expression()
            self.expect_op(")", f" to close {name}(")
        if self.accept_word("YIELD") and not self.accept_op("*"):
            while True:
                yielded = self.name("a YIELD column")
                if self.accept_word("AS"):
                    yielded = self.name("an alias after AS")
                self.scope.bind(yielded)
                if not self.accept_op(","):
                    break
            if self.accept_word("WHERE"):
                self.expression()
        return "PROCEDURE"

    def _call_subquery(self, keyword: Token) -> str:
        if self.accept_op("("):
            if not self.accept_op("*") and not self.at_op(")"):
                self.name("an imported variable")
                while self.accept_op(","):
                    self.name("an imported variable")
            self.expect_op(")", " after the imported variables of CALL (...)")
        self.expect_op("{", " to open the CALL subquery")
        names = self.query(top=False, require_return=True)
        self.expect_op("}", " to close the CALL subquery")
        for name in names:
            self.scope.bind(name)
        following = self.toks[self.i]
        if following.kind == IDENT and following.upper == "IN":
            self.refuse(
                f"CALL {{ ... }} IN TRANSACTIONS at {self.where(keyword.start)} commits the subquery in "
                "separate write transactions: only read-only queries are allowed"
            )
            self.skip_clause(self.i)
            return "REFUSED"
        return "CALL"

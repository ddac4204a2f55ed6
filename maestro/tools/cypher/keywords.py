"""Clause keywords: the read clauses the guard parses, and the clauses it refuses with a reason each."""

from __future__ import annotations

from maestro.tools.cypher.lexer import IDENT, STRING, Token

__all__ = ["CLAUSE_STARTS", "FORBIDDEN_CLAUSES", "NEVER_NAMES", "READ_CLAUSES", "forbidden_clause"]

READ_CLAUSES: frozenset[str] = frozenset({"MATCH", "OPTIONAL", "WITH", "RETURN", "UNWIND", "CALL", "UNION"})

FORBIDDEN_CLAUSES: dict[str, str] = {
    "CREATE": "writes to the graph",
    "MERGE": "writes to the graph",
    "INSERT": "writes to the graph",
    "SET": "writes properties or labels",
    "DELETE": "deletes nodes or relationships",
    "DETACH": "deletes nodes with all their relationships",
    "NODETACH": "deletes nodes",
    "REMOVE": "deletes properties or labels",
    "FOREACH": "runs update clauses for each element of a list",
    "LOAD": "makes the database server read a file or URL",
    "USE": "switches to another database or graph",
    "DROP": "is a schema or administration command",
    "SHOW": "is an administration command",
    "GRANT": "changes privileges",
    "DENY": "changes privileges",
    "REVOKE": "changes privileges",
    "ALTER": "changes users, roles, databases or aliases",
    "RENAME": "changes users, roles or databases",
    "START": "is a database administration command",
    "STOP": "is a database administration command",
    "ENABLE": "is a server administration command",
    "DEALLOCATE": "is a server administration command",
    "REALLOCATE": "is a server administration command",
    "TERMINATE": "kills transactions",
}
"""Clause keywords refused at a clause position (and as bare names in expressions), with the reason."""

CLAUSE_STARTS: frozenset[str] = READ_CLAUSES | frozenset(FORBIDDEN_CLAUSES)

NEVER_NAMES: frozenset[str] = frozenset(FORBIDDEN_CLAUSES) - {
    "START", "STOP", "SHOW", "USE", "ENABLE", "RENAME", "DEALLOCATE", "REALLOCATE",
}  # fmt: skip
"""Write keywords refused even where an expression expects a name (``start`` or ``show`` stay usable)."""

_ADMIN_OBJECTS = frozenset(
    {
        "INDEX", "INDEXES", "CONSTRAINT", "CONSTRAINTS", "USER", "USERS", "ROLE", "ROLES", "DATABASE",
        "DATABASES", "ALIAS", "ALIASES", "COMPOSITE", "OR", "RANGE", "TEXT", "POINT", "LOOKUP", "FULLTEXT",
        "VECTOR", "BTREE", "SERVER", "SERVERS", "PRIVILEGE", "PRIVILEGES", "PROCEDURES", "FUNCTIONS",
        "TRANSACTION", "TRANSACTIONS", "CURRENT", "HOME", "DEFAULT", "ALL", "BUILT", "SETTINGS",
    }
)  # fmt: skip


def forbidden_clause(tokens: list[Token], index: int) -> tuple[str, str] | None:
    """``(label, why)`` for a refused clause starting at ``tokens[index]``, e.g. ``("CREATE INDEX", ...)``.

    ``None`` when the token is not a refused clause keyword (backticked names never are).
    """
    token = tokens[index]
    if token.kind != IDENT:
        return None
    keyword = token.upper
    why = FORBIDDEN_CLAUSES.get(keyword)
    if why is None:
        return None
    following = tokens[index + 1] if index + 1 < len(tokens) else token
    label = keyword
    if keyword == "CREATE" and following.kind == IDENT and following.upper in _ADMIN_OBJECTS:
        label, why = f"CREATE {following.upper}", "is a schema or administration command"
    elif keyword in ("DETACH", "NODETACH") and following.upper == "DELETE":
        label = f"{keyword} DELETE"
    elif keyword == "LOAD":
        label = "LOAD CSV"
        for ahead in range(index + 1, min(index + 8, len(tokens) - 1)):
            if tokens[ahead].upper == "FROM" and tokens[ahead + 1].kind == STRING:
                source = tokens[ahead + 1].text
                label = f"LOAD CSV FROM {source[:80]}{'...' if len(source) > 80 else ''}"
                break
    elif following.kind == IDENT and following.upper in _ADMIN_OBJECTS:
        label = f"{keyword} {following.upper}"
    return label, why

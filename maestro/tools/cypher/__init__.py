"""The Cypher guard: read-only, single-statement, bounded Cypher, decided by parsing (RELIABILITY #9-13).

``CypherGuard().check(query, params)`` returns a ``GuardResult`` (``allowed``, ``reasons``, the
rewritten ``query``). Pure Python, no dependencies; importing it loads nothing else.
"""

from maestro.tools.cypher.allowlists import BUILTIN_FUNCTIONS, DEFAULT_APOC_FUNCTIONS, DEFAULT_PROCEDURES
from maestro.tools.cypher.errors import CypherRefused, CypherSyntaxError
from maestro.tools.cypher.guard import MAX_QUERY_BYTES, CypherGuard, GuardResult
from maestro.tools.cypher.lexer import Token, tokenize

__all__ = [
    "BUILTIN_FUNCTIONS",
    "DEFAULT_APOC_FUNCTIONS",
    "DEFAULT_PROCEDURES",
    "MAX_QUERY_BYTES",
    "CypherGuard",
    "CypherRefused",
    "CypherSyntaxError",
    "GuardResult",
    "Token",
    "tokenize",
]

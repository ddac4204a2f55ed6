"""The errors the Cypher guard raises: a syntax error with its offset, and a refusal with every reason."""

from __future__ import annotations

from maestro.core.errors import InvalidRequest, Refused

__all__ = ["CypherRefused", "CypherSyntaxError"]


class CypherSyntaxError(InvalidRequest):
    """The text is not Cypher the guard can read; ``offset`` is where in the query reading stopped."""

    code = "cypher_syntax_error"

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message, offset=offset)
        self.offset = offset


class CypherRefused(Refused):
    """The guard refused a query (CLI exit 3); ``reasons`` lists every refusal."""

    code = "cypher_refused"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("Cypher query refused: " + "; ".join(reasons), reasons=reasons)
        self.reasons = reasons

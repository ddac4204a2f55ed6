"""Maestro's error tree.

Every error has a stable ``code`` (machine-readable, part of the API contract), an ``exit_code`` for the
CLI (DESIGN.md: 1 failure, 2 usage error, 3 refused by policy/guard) and an ``http_status`` for the API.
Developer mistakes (``ConfigurationError``) are kept apart from runtime failures.

    MaestroError
    ├── ConfigurationError          catalog/weights/settings are wrong (exit 2, HTTP 500)
    ├── InvalidRequest              the request itself is malformed (exit 2, HTTP 422)
    │   ├── PayloadTooLarge         prompt or message list over the limits (exit 2, HTTP 413)
    │   └── ApprovalConflict        an approval already decided or expired (HTTP 409)
    ├── NotFound                    an id or name that does not exist (exit 1, HTTP 404)
    │   └── UnknownModel
    ├── Unauthenticated             no, bad or expired credentials (exit 1, HTTP 401)
    ├── ApprovalRequired            the action waits for an approval (exit 3, HTTP 202)
    ├── Refused                     refused by policy or a guard (exit 3)
    │   ├── PolicyDenied            (HTTP 403)
    │   ├── BudgetExceeded          (HTTP 402)
    │   ├── RateLimited             a per-tenant rate limit (HTTP 429)
    │   ├── PIIRefused              PII bound for a model not cleared for it, in "refuse" mode (HTTP 422)
    │   └── NoEligibleModel         (HTTP 422)
    ├── LedgerCorrupted             the stored ledger contradicts its signed heads (exit 1, HTTP 500)
    ├── RetrievalUnavailable        the vector store is locked by another process or unreachable (HTTP 503)
    └── ModelCallFailed             a provider call failed after retries and fallbacks (exit 1, HTTP 502)
        ├── ModelRateLimited        429 (retryable; ``retry_after`` seconds if the provider said)
        ├── ModelUnavailable        5xx, timeouts, connection errors, cooled-down deployment (retryable)
        ├── ModelRequestRejected    400/401/403/404/422 from the provider: never retried, never falls back
        │   └── ContextWindowExceeded
        └── DeadlineExceeded        the request's overall deadline passed
"""

from __future__ import annotations

from typing import Any, ClassVar


class MaestroError(Exception):
    """Root of every error Maestro raises on purpose."""

    code: ClassVar[str] = "maestro_error"
    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form used by the CLI's ``--json`` output and API error bodies."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class ConfigurationError(MaestroError):
    """A configuration file or setting is wrong; the message names the file and key."""

    code = "configuration_error"
    exit_code = 2
    http_status = 500


class InvalidRequest(MaestroError):
    code = "invalid_request"
    exit_code = 2
    http_status = 422


class ApprovalConflict(InvalidRequest):
    """The approval was already decided or has expired: a decision is final (HTTP 409)."""

    code = "approval_conflict"
    http_status = 409


class PayloadTooLarge(InvalidRequest):
    code = "payload_too_large"
    http_status = 413


class NotFound(MaestroError):
    code = "not_found"
    exit_code = 1
    http_status = 404


class UnknownModel(NotFound):
    code = "unknown_model"


class Unauthenticated(MaestroError):
    """Credentials missing, malformed, expired, revoked or not verifiable. Says nothing about tenants."""

    code = "unauthenticated"
    exit_code = 1
    http_status = 401


class ApprovalRequired(MaestroError):
    """The action needs an approval; ``details["approval_id"]`` names the request that was opened."""

    code = "approval_required"
    exit_code = 3
    http_status = 202


class Refused(MaestroError):
    """Refused by policy or a guard: the CLI exits 3."""

    code = "refused"
    exit_code = 3
    http_status = 403


class PolicyDenied(Refused):
    code = "policy_denied"
    http_status = 403


class BudgetExceeded(Refused):
    code = "budget_exceeded"
    http_status = 402


class PIIRefused(Refused):
    code = "pii_refused"
    http_status = 422


class RateLimited(Refused):
    """A tenant passed a per-tenant rate limit (e.g. Cypher queries a minute); retry after ``retry_after``."""

    code = "rate_limited"
    http_status = 429


class NoEligibleModel(Refused):
    """No configured deployment can serve the request as asked (features, limits, clearance, cooldown)."""

    code = "no_eligible_model"
    http_status = 422


class LedgerCorrupted(MaestroError):
    """The stored ledger contradicts its own signed heads; ``maestro ledger verify`` names where."""

    code = "ledger_corrupted"
    exit_code = 1
    http_status = 500


class RetrievalUnavailable(MaestroError):
    """The vector store cannot be opened or reached (locked by another process, server down)."""

    code = "retrieval_unavailable"
    exit_code = 1
    http_status = 503


class ModelCallFailed(MaestroError):
    """A model call failed. ``provider`` and ``status_code`` say where and how."""

    code = "model_call_failed"
    exit_code = 1
    http_status = 502
    retryable: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, model=model, provider=provider, status_code=status_code, **details)
        self.model = model
        self.provider = provider
        self.status_code = status_code


class ModelRateLimited(ModelCallFailed):
    code = "model_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)
        self.retry_after = retry_after


class ModelUnavailable(ModelCallFailed):
    code = "model_unavailable"


class ModelRequestRejected(ModelCallFailed):
    """The provider rejected the request itself; another model would not help."""

    code = "model_request_rejected"
    retryable = False


class ContextWindowExceeded(ModelRequestRejected):
    code = "context_window_exceeded"


class DeadlineExceeded(ModelCallFailed):
    code = "deadline_exceeded"
    http_status = 504
    retryable = False

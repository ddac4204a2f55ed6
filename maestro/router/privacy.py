"""PII handling on the way to a model: scan only when needed, refuse or protect, restore for the cleared.

Before a prompt leaves for a deployment without ``pii_allowed``, it is scanned by the injected
``PromptGuard``. What happens when PII is found depends on the tenant's mode (``MAESTRO_PII_MODE``):

- ``refuse``: the request is re-decided as ``data_class="pii"`` (only cleared deployments remain); if
  none can serve it, ``PIIRefused``.
- ``pseudonymize`` (default): non-cleared deployments receive placeholders (``<EMAIL_ADDRESS_1>``);
  a caller whose clearance is ``pii`` gets the original values restored in the answer.
- ``redact``: non-cleared deployments receive ``<EMAIL_ADDRESS>``; nothing can be restored.

Cleared deployments (e.g. the local model) always receive the prompt as is. A plan made only of cleared
deployments is never scanned, so the local default pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maestro.router.catalog import Catalog
from maestro.router.policy import Decision, RouteRequest
from maestro.router.types import Message, PromptGuard, ProtectedPrompt

PII_MODES = ("pseudonymize", "redact", "refuse")


@dataclass(frozen=True)
class PrivacyPlan:
    """What the router does with this request's prompt per deployment."""

    protected: ProtectedPrompt | None
    action: str  # none | pseudonymized | redacted | refused | cleared-only

    def messages_for(self, request: RouteRequest, pii_allowed: bool) -> list[Message]:
        if self.protected is None or pii_allowed:
            return request.messages
        return self.protected.messages

    def restore(self, text: str, request: RouteRequest, pii_allowed: bool) -> str:
        """Put original values back into an answer for a caller cleared for PII."""
        if (
            self.protected is None
            or pii_allowed
            or self.action != "pseudonymized"
            or request.clearance != "pii"
        ):
            return text
        return self.protected.restore(text)

    def record(self) -> dict[str, Any] | None:
        """What the decision record keeps: entity types and the action, never values."""
        if self.protected is None or not self.protected.found:
            return None if self.action == "none" else {"types": [], "action": self.action}
        return {"types": list(self.protected.entity_types), "action": self.action}


NO_PII = PrivacyPlan(protected=None, action="none")


class PrivacyFilter:
    """Applies the PII mode with a guard. ``mode`` is one of ``PII_MODES``."""

    def __init__(self, guard: PromptGuard, *, mode: str = "pseudonymize") -> None:
        if mode not in PII_MODES:
            raise ValueError(f"PII mode must be one of {PII_MODES}, got {mode!r}")
        self.guard = guard
        self.mode = mode

    def needs_scan(self, request: RouteRequest, decision: Decision, catalog: Catalog) -> bool:
        """Only when some planned deployment is not cleared for PII."""
        if request.data_class == "pii" or decision.chosen is None:
            return False
        plan = [decision.chosen, *decision.fallbacks]
        return any(not catalog.get(model).pii_allowed for model in plan)

    def inspect(self, request: RouteRequest) -> ProtectedPrompt:
        protect_mode = "redact" if self.mode == "redact" else "pseudonymize"
        return self.guard.protect(request.messages, mode=protect_mode)

    def plan(self, protected: ProtectedPrompt) -> PrivacyPlan:
        if not protected.found:
            return PrivacyPlan(protected=protected, action="none")
        if self.mode == "refuse":
            return PrivacyPlan(protected=protected, action="cleared-only")
        return PrivacyPlan(
            protected=protected, action="pseudonymized" if self.mode == "pseudonymize" else "redacted"
        )

"""Principals and the Authority a run carries.

A ``Principal`` is who acts (a user or a bot) in one tenant, with roles that map to scopes. An
``Authority`` is created at the edge (API request, CLI invocation, worker task) for one run and passed
down explicitly: every model call, tool call, vector query and graph query is checked against it. It is
immutable; narrowing (fewer scopes, lower clearance, a budget cap) makes a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from maestro.core.clock import utcnow
from maestro.core.errors import PolicyDenied, Unauthenticated

PrincipalKind = Literal["user", "bot"]
Clearance = Literal["public", "internal", "pii"]
_CLEARANCE_ORDER: dict[str, int] = {"public": 0, "internal": 1, "pii": 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts. ``id`` is stable; ``name`` is unique within the tenant."""

    id: str
    tenant: str
    name: str
    kind: PrincipalKind
    roles: tuple[str, ...] = ()
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def qualified_name(self) -> str:
        return f"{self.tenant}/{self.name}"


@dataclass(frozen=True, slots=True)
class Authority:
    """What one run may do: principal, tenant, scopes, budget cap, data clearance, expiry."""

    principal: Principal
    scopes: frozenset[str]
    clearance: Clearance = "internal"
    budget_usd: float | None = None
    expires_at: datetime | None = None
    run_id: str | None = None
    pinned_model: str | None = None  # every model call goes to this deployment (needs router:override)

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def is_bot(self) -> bool:
        return self.principal.kind == "bot"

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise PolicyDenied unless the authority holds ``scope``."""
        if scope not in self.scopes:
            raise PolicyDenied(
                f"principal '{self.principal.qualified_name}' lacks the '{scope}' scope for this action",
                scope=scope,
            )

    def check_live(self, now: datetime | None = None) -> None:
        """Raise Unauthenticated if the authority has expired."""
        if self.expires_at is not None and (now or utcnow()) >= self.expires_at:
            raise Unauthenticated("the run's authority has expired: start a new run")

    def cleared_for(self, data_class: Clearance) -> bool:
        return _CLEARANCE_ORDER[self.clearance] >= _CLEARANCE_ORDER[data_class]

    def narrowed(
        self,
        *,
        scopes: frozenset[str] | None = None,
        clearance: Clearance | None = None,
        budget_usd: float | None = None,
        run_id: str | None = None,
    ) -> Authority:
        """A weaker copy: scopes intersected, clearance and budget never raised."""
        new_scopes = self.scopes & scopes if scopes is not None else self.scopes
        new_clearance = self.clearance
        if clearance is not None and _CLEARANCE_ORDER[clearance] < _CLEARANCE_ORDER[self.clearance]:
            new_clearance = clearance
        new_budget = self.budget_usd
        if budget_usd is not None:
            new_budget = budget_usd if new_budget is None else min(new_budget, budget_usd)
        return replace(
            self,
            scopes=new_scopes,
            clearance=new_clearance,
            budget_usd=new_budget,
            run_id=run_id or self.run_id,
        )

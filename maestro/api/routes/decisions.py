"""``/v1/router/decisions``: the caller's tenant's routing decisions (scope ``runs:read``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from maestro.api.deps import CurrentAuthority, ServicesDep

router = APIRouter(prefix="/v1/router", tags=["router"])


@router.get("/decisions")
def list_decisions(
    services: ServicesDep, authority: CurrentAuthority, limit: int = Query(default=50, ge=1, le=500)
) -> dict[str, Any]:
    """Newest first, this tenant only."""
    services.authorizer.authorize(authority, "runs.read", {"kind": "decision", "tenant": authority.tenant})
    services.router.flush()  # include calls that finished a moment ago
    return {"decisions": services.router.decisions.list(tenant=authority.tenant, limit=limit)}


@router.get("/decisions/{decision_id}", responses={404: {"description": "no such decision in this tenant"}})
def get_decision(
    decision_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    services: ServicesDep,
    authority: CurrentAuthority,
) -> dict[str, Any]:
    """One decision; another tenant's is "not found" (no existence oracle)."""
    services.authorizer.authorize(
        authority, "runs.read", {"kind": "decision", "tenant": authority.tenant, "id": decision_id}
    )
    services.router.flush()
    return services.router.decisions.get(decision_id, tenant=authority.tenant)

"""``/v1/ledger``: the signed head and a verification report (scope ``ledger:read``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from maestro.api.deps import CurrentAuthority, ServicesDep

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])


@router.get("/head")
def ledger_head(services: ServicesDep, authority: CurrentAuthority) -> dict[str, Any] | None:
    """The newest signed tree head (``null`` when the ledger is empty)."""
    services.authorizer.authorize(authority, "ledger.read", {"kind": "ledger", "tenant": authority.tenant})
    services.router.flush()
    head = services.ledger.head()
    return head.to_dict() if head is not None else None


@router.get("/verify")
def ledger_verify(services: ServicesDep, authority: CurrentAuthority) -> dict[str, Any]:
    """``{"ok", "entries", "first_bad_index", "head"}`` over the whole ledger."""
    services.authorizer.authorize(authority, "ledger.read", {"kind": "ledger", "tenant": authority.tenant})
    services.router.flush()
    return services.ledger.verify().to_dict()

"""``/v1/approvals``: pending requests for more authority, granted or refused by ``approve:<workcell>``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from maestro.api.deps import CurrentAuthority, ServicesDep

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])


class Decision(BaseModel):
    note: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")


@router.get("")
def list_approvals(
    services: ServicesDep,
    authority: CurrentAuthority,
    status: Literal["pending", "granted", "refused", "expired"] | None = Query(default=None),
) -> dict[str, Any]:
    """This tenant's approvals, newest first."""
    services.authorizer.authorize(authority, "runs.read", {"kind": "approval", "tenant": authority.tenant})
    return {"approvals": [a.to_dict() for a in services.approvals.list(authority.tenant, status=status)]}


@router.get("/{approval_id}", responses={404: {"description": "no such approval in this tenant"}})
def get_approval(
    approval_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    services: ServicesDep,
    authority: CurrentAuthority,
) -> dict[str, Any]:
    services.authorizer.authorize(
        authority, "runs.read", {"kind": "approval", "tenant": authority.tenant, "id": approval_id}
    )
    return services.approvals.get(approval_id, tenant=authority.tenant).to_dict()


@router.post("/{approval_id}/grant", responses={403: {}, 404: {}, 409: {"description": "already decided"}})
def grant(
    approval_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    body: Decision,
    services: ServicesDep,
    authority: CurrentAuthority,
) -> dict[str, Any]:
    """Grant (needs ``approve:<workcell>``; never a bot, never the requester)."""
    return services.approvals.grant(approval_id, authority, body.note).to_dict()


@router.post("/{approval_id}/refuse", responses={403: {}, 404: {}, 409: {"description": "already decided"}})
def refuse(
    approval_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    body: Decision,
    services: ServicesDep,
    authority: CurrentAuthority,
) -> dict[str, Any]:
    return services.approvals.refuse(approval_id, authority, body.note).to_dict()

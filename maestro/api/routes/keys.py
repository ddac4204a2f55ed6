"""``/v1/keys``: API keys of the caller's tenant (scope ``keys:admin``, humans only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from maestro.api.deps import CurrentAuthority, ServicesDep

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    principal: str = Field(
        min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$", description="A principal in your tenant."
    )
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
    scopes: list[str] | None = None
    expires_at: datetime | None = None


@router.post("", status_code=201)
def create_key(body: KeyCreate, services: ServicesDep, authority: CurrentAuthority) -> dict[str, Any]:
    """A new key; ``key`` is shown once and never stored."""
    services.authorizer.authorize(authority, "keys.admin", {"kind": "api_key", "tenant": authority.tenant})
    principal = services.principals.get_by_name(authority.tenant, body.principal)
    plaintext, info = services.api_keys.create(
        principal.id, body.name, scopes=body.scopes, expires_at=body.expires_at, tenant=authority.tenant
    )
    return {"key": plaintext, **info.to_dict()}


@router.get("")
def list_keys(services: ServicesDep, authority: CurrentAuthority) -> dict[str, Any]:
    services.authorizer.authorize(authority, "keys.admin", {"kind": "api_key", "tenant": authority.tenant})
    return {"keys": [k.to_dict() for k in services.api_keys.list(authority.tenant)]}


@router.delete("/{key}", responses={404: {"description": "no such key in this tenant"}})
def revoke_key(
    key: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,128}$")],
    services: ServicesDep,
    authority: CurrentAuthority,
) -> dict[str, Any]:
    services.authorizer.authorize(authority, "keys.admin", {"kind": "api_key", "tenant": authority.tenant})
    return services.api_keys.revoke(key, tenant=authority.tenant).to_dict()

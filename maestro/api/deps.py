"""FastAPI dependencies: services from ``app.state``, and the caller's Principal and Authority.

The tenant always comes from the authenticated principal, never from the request body or path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from maestro.api.container import Services
from maestro.core.authority import Authority, Principal
from maestro.core.ids import new_id


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller, from ``Authorization: Bearer <API key or OIDC JWT>`` (401 otherwise)."""
    return services.authenticator.authenticate(request.headers.get("authorization"))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_authority(principal: CurrentPrincipal) -> Authority:
    """The authority of this request's run: the principal's scopes, internal data clearance."""
    return Authority(principal=principal, scopes=principal.scopes, clearance="internal", run_id=new_id("run"))


CurrentAuthority = Annotated[Authority, Depends(get_authority)]

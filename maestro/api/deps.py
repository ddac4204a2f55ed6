"""FastAPI dependencies: services from ``app.state``, and the caller's Principal and Authority.

The tenant always comes from the authenticated principal, never from the request body or path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from maestro.api.container import Services
from maestro.core.authority import Authority, Principal
from maestro.core.errors import Unauthenticated
from maestro.core.ids import new_id


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller, from ``Authorization: Bearer <API key or OIDC JWT>`` (401 otherwise).

    Every failure leaves an ``auth.failed`` ledger entry with the reason and the route, never the token.
    """
    try:
        return services.authenticator.authenticate(request.headers.get("authorization"))
    except Unauthenticated as exc:
        services.ledger.append(
            "auth.failed",
            {
                "reason": str(exc.details.get("reason", "unknown")),
                "method": request.method,
                "path": request.url.path,
                "client": request.client.host if request.client else None,
            },
        )
        raise


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_authority(principal: CurrentPrincipal) -> Authority:
    """The authority of this request's run: the principal's scopes, internal data clearance."""
    return Authority(principal=principal, scopes=principal.scopes, clearance="internal", run_id=new_id("run"))


CurrentAuthority = Annotated[Authority, Depends(get_authority)]

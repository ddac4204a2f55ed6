"""The one place that maps Maestro's errors to HTTP responses (no stack traces in bodies).

Authentication failures say nothing beyond "authentication failed": the specific reason (unknown key,
revoked, expired, bad signature...) would be an oracle, so it goes to the log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from maestro.core.errors import MaestroError, Unauthenticated

logger = logging.getLogger("maestro.api")


async def _maestro_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MaestroError)
    if isinstance(exc, Unauthenticated):
        logger.info(
            "authentication failed: %s %s (%s)", request.method, request.url.path, exc.details.get("reason")
        )
        return JSONResponse(
            status_code=401,
            content={"error": {"code": exc.code, "message": exc.message}},
            headers={"WWW-Authenticate": "Bearer"},
        )
    return JSONResponse(status_code=exc.http_status, content=exc.to_dict())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MaestroError, _maestro_error)

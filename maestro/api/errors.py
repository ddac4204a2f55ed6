"""The one place that maps Maestro's errors to HTTP responses (no stack traces in bodies)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from maestro.core.errors import MaestroError


async def _maestro_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MaestroError)
    return JSONResponse(status_code=exc.http_status, content=exc.to_dict())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MaestroError, _maestro_error)

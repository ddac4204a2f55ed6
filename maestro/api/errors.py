"""The one place that maps Maestro's errors to HTTP responses (no stack traces in bodies).

Authentication failures say nothing beyond "authentication failed": the specific reason (unknown key,
revoked, expired, bad signature...) would be an oracle, so it goes to the log only.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

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


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error Maestro returns: ``{"error": {"code", "message", ...details}}``."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorBody}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is not valid JSON / UTF-8"},
    401: _error("missing, invalid, expired or revoked credentials"),
    402: _error("the tenant's or principal's budget cannot cover the request"),
    403: _error("refused by policy"),
    404: _error("not found in the caller's tenant"),
    409: _error("conflicts with the resource's state (e.g. an approval already decided)"),
    413: _error("the request is too large"),
}
"""Declared on every authenticated route (RELIABILITY #32: responses match the schema)."""


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # e.g. a NUL byte in a string PostgreSQL would have to store: the input is bad, not the server
    logger.info("rejected input the database cannot store: %s %s", request.method, request.url.path)
    body = {
        "error": {
            "code": "invalid_request",
            "message": "the request contains characters that cannot be stored",
        }
    }
    return JSONResponse(status_code=422, content=body)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MaestroError, _maestro_error)
    app.add_exception_handler(sa.exc.DataError, _data_error)

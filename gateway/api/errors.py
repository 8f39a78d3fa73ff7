"""Every error leaves as JSON with a stable code and a human message, never a traceback.

Validation errors never echo the submitted values: a body may carry a camera password.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gateway.errors import GatewayError, InvalidInput
from gateway.redact import redact

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def _body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"code": code, "message": redact(message), **{k: v for k, v in extra.items() if v}}


async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
    field = exc.field if isinstance(exc, InvalidInput) else None
    return JSONResponse(
        _body(exc.code, exc.message, field=field),
        status_code=exc.status,
        headers=getattr(exc, "headers", None),  # WWW-Authenticate, Retry-After
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        problems.append({"field": ".".join(loc), "message": redact(message)})
    summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
    first = problems[0]["field"] if problems else None
    return JSONResponse(
        _body("invalid_request", summary or "invalid request", field=first, errors=problems),
        status_code=422,
    )


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        _body(code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        _body("internal_error", "internal error; see the gateway log"), status_code=500
    )

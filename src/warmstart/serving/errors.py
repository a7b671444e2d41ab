"""The HTTP API's errors: every answer other than 200 is JSON that names the field it is about,

    {"error": {"status": 422, "field": "texts[3]", "message": "..."}}

:class:`ApiError` is what a route raises; :func:`add_error_handlers` turns it, FastAPI's
validation errors, a :class:`~warmstart.errors.WarmstartError` and any bug into that shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from warmstart.errors import WarmstartError


class ApiError(Exception):
    """An answer other than 200, with the request field it is about."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.headers = headers or {}


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON of an error answer."""
    return {"error": {"status": status, "field": field, "message": message}}


def error_response(status: int, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer: :func:`error_body` with ``status`` (and ``headers``, if any)."""
    return JSONResponse(error_body(status, message, field), status_code=status, headers=headers)


def check_text(text: str, field: str) -> None:
    """A 422 for a string that is not valid Unicode (a lone surrogate from JSON's \\ud800)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, f"{field} is not valid Unicode (a lone surrogate)",
                       field=field) from None


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON, with a 4xx status for what the client can fix."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.message, e.field, e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = list(e.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            detail = (errors[0].get("ctx") or {}).get("error", "")
            return error_response(400, f"the body is not valid JSON ({detail})", "body")
        found = [{"field": _field(err.get("loc", ())), "message": str(err.get("msg", ""))}
                 for err in errors]
        first = found[0] if found else {"field": "body", "message": "invalid request"}
        if first["field"] == "body" and isinstance(errors[0].get("input"), bytes):
            # FastAPI reads a body as JSON only when the request says it is
            return error_response(415, "send the body as JSON, with the header "
                                       "'Content-Type: application/json'", "body")
        body = error_body(422, f"{first['field']}: {first['message']}", first["field"])
        body["error"]["errors"] = found
        return JSONResponse(body, status_code=422)

    @app.exception_handler(WarmstartError)
    async def user_error(_: Request, e: WarmstartError) -> JSONResponse:
        return error_response(422, str(e))

    @app.exception_handler(Exception)
    async def bug(_: Request, e: Exception) -> JSONResponse:
        # A bug, not the client's doing: logged with its traceback by uvicorn; the worker
        # and the other requests go on.
        return error_response(500, f"internal error ({type(e).__name__}); please report it")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        field = "body" if e.status_code == 400 else None
        return error_response(e.status_code, str(e.detail), field, dict(e.headers or {}))


def _field(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"

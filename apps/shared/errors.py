"""One error body for every 4xx: which field, and why.

`{"detail": [{"loc": ["body", "title"], "msg": "...", "type": "..."}]}` is FastAPI's
own validation shape; using it for 401/404/409 too means clients parse one format.
The offending input is not echoed back: it may be large or secret.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.shared.logs import get_logger

_log = get_logger("apps.errors")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: list[ErrorItem]


class ApiError(Exception):
    """Raised by routes and data access for a client error naming its field."""

    def __init__(
        self,
        status_code: int,
        loc: list[str | int],
        msg: str,
        type_: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.item = ErrorItem(loc=loc, msg=msg, type=type_)
        self.headers = headers


def not_found(loc: list[str | int], what: str) -> ApiError:
    return ApiError(404, loc, f"{what} not found", "not_found")


def invalid(loc: list[str | int], msg: str, type_: str = "value_error") -> ApiError:
    return ApiError(422, loc, msg, type_)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error body for `codes`."""
    return {code: {"model": ErrorBody} for code in codes}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def _body(items: list[ErrorItem]) -> dict[str, Any]:
    return ErrorBody(detail=items).model_dump(mode="json")


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(_body([exc.item]), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        ErrorItem(loc=list(error["loc"]), msg=error["msg"], type=error["type"])
        for error in exc.errors()
    ]
    return JSONResponse(_body(items), status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # Starlette's own errors concern the request line (unknown path, wrong method) or,
    # for 400, a body that could not even be decoded.
    loc: list[str | int] = ["body"] if exc.status_code == 400 else ["request"]
    item = ErrorItem(loc=loc, msg=str(exc.detail), type=f"http_{exc.status_code}")
    return JSONResponse(_body([item]), status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    _log.error("unhandled error", path=request.url.path, exc_info=exc)
    item = ErrorItem(loc=["server"], msg="internal error", type="internal_error")
    return JSONResponse(_body([item]), status_code=500)

"""Every error answers {"error": {"code", "message", "details"}}; nothing leaks a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from msgspec import Struct

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(HTTPException):
    """An answer with our error code; raise it from handlers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, extra=details, headers=headers)
        self.code = code


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


class ErrorDetail(Struct):
    code: str
    message: str
    details: Any


class ErrorAnswer(Struct):
    """The body of every error, for /openapi.json."""

    error: ErrorDetail


def error_responses(described: dict[int, str]) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a handler answers: {status: when}."""
    return {
        status: ResponseSpec(
            data_container=ErrorAnswer, description=description, generate_examples=False
        )
        for status, description in described.items()
    }


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = getattr(exc, "code", None) or CODES.get(status, "error")
    message = exc.detail
    details = exc.extra or None
    # Litestar says 400 for both; we keep 400 for JSON that does not parse and answer 422
    # for JSON of the wrong shape, so a client can tell a broken body from a wrong one.
    if isinstance(exc, ValidationException):
        status, code = 422, "validation_error"
        message = "the request does not match the schema"
    elif status == 400 and not isinstance(exc, ApiError):
        # Litestar's own 400s come from decoding the body: broken, truncated or out-of-range JSON.
        code = "invalid_json"
    return Response(
        error_body(code, str(message), details),
        status_code=status,
        media_type=MediaType.JSON,
        headers=exc.headers,
    )


def internal_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, RecursionError):
        # Only decoding absurdly deep JSON recurses this far; it is the client's body at fault.
        return Response(
            error_body("invalid_json", "JSON is nested too deeply"),
            status_code=400,
            media_type=MediaType.JSON,
        )
    log.exception("unhandled error", exc_info=exc)
    return Response(
        error_body("internal", "internal error; the server log has the details"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )


exception_handlers: dict[Any, Any] = {HTTPException: http_error, Exception: internal_error}

"""The one place where exceptions become the OpenAI error envelope.

``{"error": {"message", "type", "param", "code"}}`` with the matching HTTP status. Domain
errors (``voxhelm.errors``) carry client-safe messages; anything else is logged with an
error id and answered with a short message naming that id, never with a traceback.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

from voxhelm import errors
from voxhelm.diarization.base import DiarizationError, DiarizationFault, DiarizationUnavailable
from voxhelm.edge.bodies import DISK_FULL

logger = logging.getLogger("voxhelm.api")


class ApiError(Exception):
    """An HTTP error raised by the API layer itself (auth, request shape)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code or "invalid_request")


def error_response(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# Domain error class -> (HTTP status, envelope type). The most specific class wins.
_DOMAIN_STATUS: list[tuple[type[errors.VoxhelmError], int, str]] = [
    # A sync diarization: the engine cannot run here, failed itself, or found no speakers
    # (or no usable reference voice) in this audio.
    (DiarizationUnavailable, 503, "service_unavailable_error"),
    (DiarizationFault, 500, "server_error"),
    (DiarizationError, 400, "invalid_request_error"),
    (errors.PayloadTooLarge, 413, "invalid_request_error"),
    (errors.InvalidInput, 400, "invalid_request_error"),
    (errors.NotFound, 404, "invalid_request_error"),
    (errors.Conflict, 409, "conflict_error"),
    (errors.Busy, 429, "rate_limit_error"),
    (errors.ServiceUnavailable, 503, "service_unavailable_error"),
]


def _domain_response(exc: errors.VoxhelmError) -> JsonResponse | None:
    for cls, status, kind in _DOMAIN_STATUS:
        if isinstance(exc, cls):
            headers: dict[str, str] = {}
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            return error_response(
                status, exc.message, type=kind, param=exc.param, code=exc.code, headers=headers
            )
    return None


def response_for_exception(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """Map any exception raised under ``/v1/`` to an envelope response."""
    if isinstance(exc, ApiError):
        return error_response(
            exc.status,
            exc.message,
            type=exc.type,
            param=exc.param,
            code=exc.code,
            headers=exc.headers,
        )
    if isinstance(exc, errors.VoxhelmError):
        response = _domain_response(exc)
        if response is not None:
            return response
    if isinstance(exc, Http404):
        return not_found_response()
    if isinstance(exc, PermissionDenied):
        return error_response(403, "Permission denied.", type="permission_error")
    if isinstance(exc, RequestDataTooBig):
        return error_response(413, "The request body is too large.", code="payload_too_large")
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        # Spooling an upload ran out of temporary disk: the server's state, not a bug.
        return error_response(
            507,
            "The server is out of temporary disk space; try again later.",
            type="server_error",
            code="insufficient_storage",
        )
    if isinstance(exc, MultiPartParserError | BadRequest | SuspiciousOperation):
        # A body Django cannot parse (a multipart part header over 1 KiB, too many fields):
        # the client's fault, as Django's own handler would say, not an internal error.
        return error_response(400, "The request body could not be parsed.", code="invalid_body")
    error_id = secrets.token_hex(6)
    logger.error(
        "unhandled error id=%s method=%s path=%s",
        error_id,
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(
        500,
        f"The server failed to process the request (error id {error_id}).",
        type="server_error",
        code="internal_error",
        headers={"X-Voxhelm-Error-Id": error_id},
    )


def not_found_response() -> JsonResponse:
    return error_response(404, "Not found.", code="not_found")


def method_not_allowed_response(allowed: list[str] | Any) -> JsonResponse:
    allowed_text = ", ".join(allowed)
    return error_response(
        405,
        f"Method not allowed. Use {allowed_text}.",
        code="method_not_allowed",
        headers={"Allow": allowed_text},
    )

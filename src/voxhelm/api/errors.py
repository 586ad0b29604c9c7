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

    def response(self) -> JsonResponse:
        """The envelope of this error, with its status and headers."""
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return JsonResponse({"error": error}, status=self.status, headers=self.headers)


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code or "invalid_request")


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


def _domain_error(exc: errors.VoxhelmError) -> ApiError | None:
    for cls, status, kind in _DOMAIN_STATUS:
        if isinstance(exc, cls):
            retry_after = getattr(exc, "retry_after", None)
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            return ApiError(
                status, exc.message, type=kind, param=exc.param, code=exc.code, headers=headers
            )
    return None


def response_for_exception(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """Map any exception raised under ``/v1/`` to an envelope response."""
    if isinstance(exc, errors.VoxhelmError):
        exc = _domain_error(exc) or exc
    if isinstance(exc, ApiError):
        return exc.response()
    if isinstance(exc, Http404):
        return not_found_response()
    if isinstance(exc, PermissionDenied):
        return ApiError(403, "Permission denied.", type="permission_error").response()
    if isinstance(exc, RequestDataTooBig):
        return ApiError(413, "The request body is too large.", code="payload_too_large").response()
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        # Spooling an upload ran out of temporary disk: the server's state, not a bug.
        return ApiError(
            507,
            "The server is out of temporary disk space; try again later.",
            type="server_error",
            code="insufficient_storage",
        ).response()
    if isinstance(exc, MultiPartParserError | BadRequest | SuspiciousOperation):
        # A body Django cannot parse (a multipart part header over 1 KiB, too many fields):
        # the client's fault, as Django's own handler would say, not an internal error.
        error = ApiError(400, "The request body could not be parsed.", code="invalid_body")
        return error.response()
    error_id = secrets.token_hex(6)
    logger.error(
        "unhandled error id=%s method=%s path=%s",
        error_id,
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return ApiError(
        500,
        f"The server failed to process the request (error id {error_id}).",
        type="server_error",
        code="internal_error",
        headers={"X-Voxhelm-Error-Id": error_id},
    ).response()


def not_found_response() -> JsonResponse:
    return ApiError(404, "Not found.", code="not_found").response()


def method_not_allowed_response(allowed: list[str] | Any) -> JsonResponse:
    allowed_text = ", ".join(allowed)
    return ApiError(
        405,
        f"Method not allowed. Use {allowed_text}.",
        code="method_not_allowed",
        headers={"Allow": allowed_text},
    ).response()

"""Bearer-token authentication for producers and remote workers.

Tokens are compared in constant time against every configured value (no early exit that
would reveal which label matched) and are never logged.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from voxhelm.api.errors import ApiError
from voxhelm.tokens import bearer_from_header, match_token


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401,
        message,
        type="authentication_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _token(request: HttpRequest, kind: str = "") -> str:
    token = bearer_from_header(request.headers.get("Authorization"))
    if token is None:
        raise _unauthorized(f"Missing {kind}bearer token.")
    return token


def _label(request: HttpRequest, tokens: dict[str, str], kind: str = "") -> str:
    label = match_token(_token(request, kind), tokens)
    if label is None:
        raise _unauthorized(f"Invalid {kind}bearer token.")
    return label


def authenticate_producer(request: HttpRequest) -> str:
    """Return the producer label for the request's bearer token, or raise a 401 ApiError."""
    return _label(request, settings.VOXHELM.auth.bearer_tokens)


def authenticate_worker(request: HttpRequest) -> str:
    """Return the worker id for the request's worker token, or raise a 401 ApiError."""
    return _label(request, settings.VOXHELM.auth.worker_tokens, "worker ")


def authenticate_any(request: HttpRequest) -> str:
    """Accept a producer or a worker token (health); returns ``producer:<l>`` or ``worker:<l>``."""
    token = _token(request)
    auth = settings.VOXHELM.auth
    for kind, tokens in (("producer", auth.bearer_tokens), ("worker", auth.worker_tokens)):
        label = match_token(token, tokens)
        if label is not None:
            return f"{kind}:{label}"
    raise _unauthorized("Invalid bearer token.")

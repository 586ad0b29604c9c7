"""Bearer-token authentication for producers and remote workers.

Tokens are compared in constant time against every configured value (no early exit that
would reveal which label matched) and are never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from django.conf import settings
from django.http import HttpRequest

from voxhelm.api.errors import ApiError

BEARER_PREFIX = "Bearer "


def match_token(presented: str, tokens: Mapping[str, str]) -> str | None:
    """Return the label whose token equals ``presented``, or None.

    Every configured token is compared, so the time taken does not depend on which one (or
    whether one) matches.
    """
    presented_bytes = presented.encode("utf-8")
    found: str | None = None
    for label, token in tokens.items():
        if hmac.compare_digest(presented_bytes, token.encode("utf-8")) and found is None:
            found = label
    return found


def bearer_from_header(header: str | None) -> str | None:
    if not header or not header.startswith(BEARER_PREFIX):
        return None
    value = header[len(BEARER_PREFIX) :].strip()
    return value or None


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401,
        message,
        type="authentication_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticate_producer(request: HttpRequest) -> str:
    """Return the producer label for the request's bearer token, or raise a 401 ApiError."""
    token = bearer_from_header(request.headers.get("Authorization"))
    if token is None:
        raise _unauthorized("Missing bearer token.")
    label = match_token(token, settings.VOXHELM.auth.bearer_tokens)
    if label is None:
        raise _unauthorized("Invalid bearer token.")
    return label


def authenticate_worker(request: HttpRequest) -> str:
    """Return the worker id for the request's worker token, or raise a 401 ApiError."""
    token = bearer_from_header(request.headers.get("Authorization"))
    if token is None:
        raise _unauthorized("Missing worker bearer token.")
    label = match_token(token, settings.VOXHELM.auth.worker_tokens)
    if label is None:
        raise _unauthorized("Invalid worker bearer token.")
    return label


def authenticate_any(request: HttpRequest) -> str:
    """Accept a producer or a worker token (health); returns ``producer:<l>`` or ``worker:<l>``."""
    token = bearer_from_header(request.headers.get("Authorization"))
    if token is None:
        raise _unauthorized("Missing bearer token.")
    label = match_token(token, settings.VOXHELM.auth.bearer_tokens)
    if label is not None:
        return f"producer:{label}"
    label = match_token(token, settings.VOXHELM.auth.worker_tokens)
    if label is not None:
        return f"worker:{label}"
    raise _unauthorized("Invalid bearer token.")

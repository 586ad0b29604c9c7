"""The access log and the request metrics: one line and one observation per HTTP request.

The line (logger ``voxhelm.access``, INFO) carries the request id (from a well-formed
``X-Request-ID`` header, else generated, and echoed in the response), method, path (without
the query string), route, status, duration in milliseconds and who asked: the producer
label, the worker id on ``/v1/internal/`` or ``operator:<name>`` in the console. Tokens,
headers and query strings are never logged. A streamed body is logged when it ends, with
``disconnected=true`` if the client went away first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse

from voxhelm import metrics
from voxhelm.api.middleware import ResponseHookMiddleware
from voxhelm.logformat import log_event

logger = logging.getLogger("voxhelm.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
WORKER_PREFIX = "/v1/internal/"
MAX_LOGGED_PATH = 200


def request_id(request: HttpRequest) -> str:
    """The request's id: the client's ``X-Request-ID`` when well-formed, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)


def endpoint(request: HttpRequest) -> str:
    """The route pattern (``v1/jobs/<uuid:job_id>``): a bounded label, unlike the path."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "unmatched"
    return "/" + str(match.route)


def caller(request: HttpRequest) -> dict[str, str]:
    """Who made the request, as the authentication saw it (never a token)."""
    principal = getattr(request, "voxhelm_principal", None)
    if isinstance(principal, str):
        if request.path.startswith(WORKER_PREFIX):
            return {"worker": principal}
        kind, sep, label = principal.partition(":")
        if sep and kind in ("producer", "worker"):  # health accepts both kinds of token
            return {kind: label}
        return {"producer": principal}
    # The console: only a user the view already loaded (no database query from here).
    user = getattr(request, "_cached_user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return {"producer": f"operator:{user.get_username()}"}
    return {}


class AccessLogMiddleware(ResponseHookMiddleware):
    """Outermost middleware: times each request, logs it and counts it. It overrides the
    calls, not ``finish``: the clock starts before the view, and a client gone mid-request
    is logged too."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started = time.monotonic()
        rid = request_id(request)
        request.voxhelm_request_id = rid  # type: ignore[attr-defined]
        response: HttpResponseBase = self.get_response(request)
        return self._finish(request, response, rid, started)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.monotonic()
        rid = request_id(request)
        request.voxhelm_request_id = rid  # type: ignore[attr-defined]
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        try:
            response = await get_response(request)
        except asyncio.CancelledError:
            # The client went away before the answer was ready (nginx calls that 499).
            record(request, 499, rid, started, disconnected=True)
            raise
        return self._finish(request, response, rid, started)

    def _finish(
        self, request: HttpRequest, response: HttpResponseBase, rid: str, started: float
    ) -> HttpResponseBase:
        response[REQUEST_ID_HEADER] = rid
        if isinstance(response, StreamingHttpResponse) and response.is_async:
            response.streaming_content = self._logged_stream(
                request,
                response,
                rid,
                started,
                response.streaming_content,  # type: ignore[arg-type]
            )
        else:
            record(request, response.status_code, rid, started)
        return response

    async def _logged_stream(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        rid: str,
        started: float,
        content: AsyncIterator[bytes],
    ) -> AsyncIterator[bytes]:
        finished = False
        try:
            async with aclosing(content) as parts:  # type: ignore[type-var]
                async for part in parts:
                    yield part
            finished = True
        finally:
            record(request, response.status_code, rid, started, disconnected=not finished)


def record(
    request: HttpRequest,
    status: int,
    rid: str,
    started: float,
    *,
    disconnected: bool = False,
) -> None:
    """Log and count one answered request."""
    seconds = time.monotonic() - started
    route = endpoint(request)
    method = request.method or "-"
    metrics.http_requests.labels(route, method, str(status)).inc()
    metrics.http_request_duration.labels(route, method).observe(seconds)
    path = request.path[:MAX_LOGGED_PATH]
    fields: dict[str, Any] = {
        "request_id": rid,
        "method": method,
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "disconnected": True if disconnected else None,
        **caller(request),
    }
    log_event(logger, f"{method} {path} {status} {seconds * 1000:.0f}ms", fields)

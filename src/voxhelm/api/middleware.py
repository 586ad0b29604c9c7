"""Middleware that keeps every ``/v1/`` response inside the OpenAI error envelope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from voxhelm.api.errors import (
    ApiError,
    method_not_allowed_response,
    not_found_response,
    response_for_exception,
)

API_PREFIX = "/v1/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX) or request.path == "/v1"


def envelope_framework_errors(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Replace Django's HTML 404/405 pages under ``/v1/`` with envelope responses."""
    enveloped = response.get("Content-Type", "").startswith("application/json")
    if enveloped or not is_api_request(request):
        return response
    if response.status_code == 404:
        return not_found_response()
    if response.status_code == 405:
        allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
        return method_not_allowed_response(allowed)
    if response.status_code >= 400:
        # e.g. DisallowedHost (400) or an oversized non-file body, rejected before any view.
        kind = "server_error" if response.status_code >= 500 else "invalid_request_error"
        return ApiError(
            response.status_code, "The request could not be processed.", type=kind
        ).response()
    return response


class ResponseHookMiddleware:
    """A middleware that passes every response through :meth:`finish`, in sync and async
    mode alike (so async views are not pushed through a thread just to pass it)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self.finish(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        return self.finish(request, await get_response(request))

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return response


class ApiErrorMiddleware(ResponseHookMiddleware):
    """Turns exceptions and framework error pages under ``/v1/`` into the envelope.

    Works in both sync and async mode so async views (transcription, health) are not pushed
    through a thread just to pass this middleware.
    """

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return envelope_framework_errors(request, response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if not is_api_request(request):
            return None
        return response_for_exception(request, exception)

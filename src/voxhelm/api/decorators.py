"""``api_view``: method check, authentication and CSRF exemption for API views.

Views stay free of try/except: errors propagate to ``ApiErrorMiddleware``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from voxhelm.api.auth import authenticate_any, authenticate_producer, authenticate_worker
from voxhelm.api.errors import method_not_allowed_response
from voxhelm.edge.rules import BodyKind, BodyRule, declare_body

AuthKind = Literal["producer", "worker", "any", "none"]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_AUTHENTICATORS: dict[str, Callable[[HttpRequest], str]] = {
    "producer": authenticate_producer,
    "worker": authenticate_worker,
    "any": authenticate_any,
}


def _prepare(request: HttpRequest, methods: tuple[str, ...], auth: AuthKind) -> Any:
    """Return a response to send instead of calling the view, or None to go on."""
    if request.method not in methods:
        return method_not_allowed_response(list(methods))
    if auth != "none":
        # Auth runs before the body is parsed, so a stranger learns nothing about validation.
        request.voxhelm_principal = _AUTHENTICATORS[auth](request)  # type: ignore[attr-defined]
    return None


def api_view(
    methods: tuple[str, ...] | list[str],
    *,
    auth: AuthKind = "producer",
    body: BodyKind | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a sync or async view: allowed methods, authentication, no CSRF.

    ``body`` is the request body the view takes (default: a JSON document for a method with
    a body, a few KiB otherwise); the edge enforces it, and the caller's credential, before
    the body is read. The authenticated label is available as ``request.voxhelm_principal``.
    """
    allowed = tuple(m.upper() for m in methods)
    kind: BodyKind = body or ("json" if _BODY_METHODS.intersection(allowed) else "none")
    rule = declare_body(BodyRule(auth, kind))

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(
                request: HttpRequest, *args: Any, **kwargs: Any
            ) -> HttpResponseBase:
                early = _prepare(request, allowed, auth)
                if early is not None:
                    return early  # type: ignore[no-any-return]
                return await view(request, *args, **kwargs)  # type: ignore[no-any-return]

            return rule(csrf_exempt(async_wrapper))

        @functools.wraps(view)
        def sync_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            early = _prepare(request, allowed, auth)
            if early is not None:
                return early  # type: ignore[no-any-return]
            return view(request, *args, **kwargs)  # type: ignore[no-any-return]

        return rule(csrf_exempt(sync_wrapper))

    return decorate


def principal(request: HttpRequest) -> str:
    """The label that ``api_view`` authenticated."""
    return str(request.voxhelm_principal)  # type: ignore[attr-defined]

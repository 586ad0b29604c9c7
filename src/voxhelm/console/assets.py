"""The console's static files, served by WhiteNoise in front of Django, at the ASGI level.

WhiteNoise's Django middleware is synchronous only; in Django's middleware chain it would
push every request, the async API views included, through a thread. Here it sees only
``STATIC_URL`` paths, through asgiref's WSGI adapter. The files come straight from the apps'
``static/`` folders (no ``collectstatic`` needed); a collected ``STATIC_ROOT`` also counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.wsgi import WsgiToAsgi
from django.conf import settings
from django.contrib.staticfiles import finders
from whitenoise.base import WhiteNoise

from voxhelm.edge.bodies import ASGIApp, Receive, Scope, Send


def _not_found(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Not found."]


def static_prefix() -> str:
    """``STATIC_URL`` as an absolute path with slashes at both ends (``/static/``)."""
    return "/" + str(settings.STATIC_URL).strip("/") + "/"


def build_whitenoise() -> WhiteNoise:
    """WhiteNoise over every finder's folders, then ``STATIC_ROOT`` if it was collected."""
    prefix = static_prefix()
    whitenoise = WhiteNoise(_not_found, autorefresh=settings.DEBUG, max_age=300)
    for finder in finders.get_finders():
        for storage in getattr(finder, "storages", {}).values():
            sub = (getattr(storage, "prefix", None) or "").strip("/")
            whitenoise.add_files(storage.location, prefix=prefix + (f"{sub}/" if sub else ""))
    if settings.STATIC_ROOT and settings.STATIC_ROOT.is_dir():
        whitenoise.add_files(str(settings.STATIC_ROOT), prefix=prefix)
    return whitenoise


class StaticFiles:
    """ASGI: requests under ``STATIC_URL`` go to WhiteNoise, everything else to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.prefix = static_prefix()
        self.files = WsgiToAsgi(build_whitenoise())  # type: ignore[no-untyped-call]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.files(scope, receive, send)
            return
        await self.app(scope, receive, send)

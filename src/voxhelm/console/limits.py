"""``ConsoleBodyLimit``: caps the bodies of console requests while they stream in.

Django's ASGI handler spools a whole request body to disk before any view (or sign-in
check) runs, so without a cap anyone could fill the disk through ``POST /``. The console
form may carry one upload of at most ``VOXHELM_MAX_UPLOAD_BYTES``; other console paths
carry small forms. ``/v1/`` paths are left to the API's own limits.
"""

from __future__ import annotations

from collections.abc import Callable

from voxhelm.api.limits import MULTIPART_SLACK, ASGIApp, Receive, Scope, Send, run_capped
from voxhelm.config import MIB, Config

FORM_CAP = 1 * MIB


def console_cap(path: str, config: Config) -> int | None:
    """The body cap of a console path in bytes, or None for API and static paths."""
    if path.startswith(("/v1/", "/static/")) or path == "/v1":
        return None
    if path == "/":
        return config.limits.max_upload_bytes + MULTIPART_SLACK
    return FORM_CAP


def too_large_page(config: Config) -> bytes:
    limit = max(1, config.limits.max_upload_bytes // MIB)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>File too large</title>"
        f"<main><h1>File too large</h1><p>The console accepts files up to {limit} MiB. "
        '<a href="/">Back to the console</a></p></main></html>'
    ).encode()


class ConsoleBodyLimit:
    def __init__(self, app: ASGIApp, config: Callable[[], Config]) -> None:
        self.app = app
        self.config = config

    async def reject(self, send: Send) -> None:
        page = too_large_page(self.config())
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(page)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": page})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = console_cap(scope["path"], self.config()) if scope["type"] == "http" else None
        if cap is None:
            await self.app(scope, receive, send)
            return
        await run_capped(self.app, scope, receive, send, cap, lambda: self.reject(send))

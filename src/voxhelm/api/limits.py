"""ASGI middleware that caps request bodies while they stream in.

Django's ASGI handler reads a whole body into a spooled temporary file before any view
runs, so a size check in the view would come after an oversized upload was already on disk.
This wrapper refuses a too-large ``Content-Length`` at once and stops reading a streamed
body as soon as it passes the cap, answering 413 in the error envelope (or 401 first, so a
stranger learns nothing from the size check).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from voxhelm.api.auth import bearer_from_header, match_token
from voxhelm.config import MIB, Config

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Room for the multipart envelope and the small form fields around the file.
MULTIPART_SLACK = 1 * MIB


def body_limit(path: str, config: Config) -> tuple[int, str] | None:
    """(byte cap, message) for a path with a limited body, or None."""
    if path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        limit = config.limits.max_upload_bytes
        return limit + MULTIPART_SLACK, (
            f"Uploaded file exceeded {limit // MIB} MiB transcription limit."
        )
    if path == "/v1/uploads":
        limit = config.limits.batch_max_staged_upload_bytes
        return limit + MULTIPART_SLACK, (
            f"Uploaded file exceeded the configured {limit // MIB} MiB batch staging limit."
        )
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def run_capped(  # noqa: PLR0917 - an ASGI call plus its cap and answer
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    cap: int,
    reject: Callable[[], Awaitable[None]],
) -> None:
    """Run ``app`` with at most ``cap`` body bytes: a larger ``Content-Length`` is rejected at
    once; a streamed body is cut off when it passes the cap (the app sees a disconnect) and,
    if the app has not answered yet, ``reject()`` answers."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        await reject()
        return
    received = 0
    exceeded = False
    started = False

    async def limited_receive() -> Message:
        nonlocal received, exceeded
        if exceeded:
            return {"type": "http.disconnect"}
        event = await receive()
        if event["type"] == "http.request":
            received += len(event.get("body", b""))
            if received > cap:
                # Django treats a disconnect as an aborted request and sends nothing.
                exceeded = True
                return {"type": "http.disconnect"}
        return event

    async def tracking_send(event: Message) -> None:
        nonlocal started
        started = started or event["type"] == "http.response.start"
        await send(event)

    await app(scope, limited_receive, tracking_send)
    if exceeded and not started:
        await reject()


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, config: Callable[[], Config]) -> None:
        self.app = app
        self.config = config

    async def reject(self, scope: Scope, send: Send, message: str) -> None:
        token = bearer_from_header(_header(scope, b"authorization"))
        if token is None or match_token(token, self.config().auth.bearer_tokens) is None:
            error: dict[str, str | None] = {
                "message": "Invalid bearer token." if token else "Missing bearer token.",
                "type": "authentication_error",
                "param": None,
                "code": "invalid_api_key",
            }
            await _send_json(send, 401, {"error": error}, [(b"www-authenticate", b"Bearer")])
            return
        too_large = {
            "message": message,
            "type": "invalid_request_error",
            "param": "file",
            "code": "payload_too_large",
        }
        await _send_json(send, 413, {"error": too_large}, [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = body_limit(scope["path"], self.config()) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        cap, message = limit
        await run_capped(
            self.app, scope, receive, send, cap, lambda: self.reject(scope, send, message)
        )

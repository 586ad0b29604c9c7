"""The body gate: every request body is capped, and its sender checked, before Django reads it.

Django's ASGI handler reads a whole body into a spooled temporary file before any view (or
authentication) runs, so a check in the view comes after an oversized body is already on
disk. This ASGI wrapper resolves the path to its view and applies the view's
:class:`~voxhelm.edge.rules.BodyRule` first:

- a request that carries a body but not the credential the view needs is refused at once,
  before a byte of it is read (401 for the API, 403 for the console), unless the view takes
  a small body from visitors too (the console's sign-in form); what the client sends after
  the answer is thrown away (:func:`discard_body`), never stored;
- a ``Content-Length`` over the cap is refused at once (413); a streamed body is cut off as
  soon as it passes the cap;
- a full temporary disk (``ENOSPC``) while Django spools the body answers 507 in the
  envelope, never a bare 500.

The answers are the OpenAI envelope under ``/v1/`` (and for a script that asks for JSON,
such as the console's upload), else a page the caller renders (the console's layout).

Caps under Django's in-memory threshold (2.5 MB) never touch the disk, so only producers
with a token (sync and staged uploads), remote workers (a long transcript's completion) and
signed-in operators (the console upload) can make the server spool to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.urls import Resolver404, resolve

from voxhelm.config import MIB, Config
from voxhelm.edge.rules import NO_BODY, BodyKind, BodyRule, Caller, rule_of
from voxhelm.tokens import bearer_from_header, match_token
from voxhelm.units import human_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
SignedIn = Callable[[Scope], Awaitable[bool]]
ErrorPage = Callable[[int, str, str], str]
"""The HTML of a refusal outside the API: (status, title, message) -> page."""

KIB = 1024
FIXED_CAPS: dict[BodyKind, int] = {
    "none": 8 * KIB,  # a view that reads no body; room for a client that sends a stray one
    "sign_in": 16 * KIB,
    "form": 64 * KIB,
    "json": 256 * KIB,
    # A completion carries the transcript's text: hundreds of hours of speech
    # (worker_protocol.limits).
    "result": 24 * MIB,
}
# Room for the multipart envelope and the small form fields around the file.
MULTIPART_SLACK = 1 * MIB
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
DISCARD_SECONDS = 5.0
API_PREFIX = "/v1/"
SIGN_IN_FIRST = "Sign in to the console before sending this."
UNKNOWN_API = BodyRule("producer", "none")
"""An unknown ``/v1/`` path: a stranger's body is refused like on any producer route."""


def body_cap(kind: BodyKind, config: Config) -> int:
    """The byte cap of a body of ``kind`` under ``config``."""
    if kind == "upload":
        return config.limits.max_upload_bytes + MULTIPART_SLACK
    if kind == "staged":
        return config.limits.batch_max_staged_upload_bytes + MULTIPART_SLACK
    return FIXED_CAPS[kind]


def rule_for(path: str, static_prefix: str) -> BodyRule:
    """The body rule of the view that ``path`` resolves to."""
    if path.startswith(static_prefix):
        return NO_BODY
    try:
        match = resolve(path)
    except Resolver404:
        return UNKNOWN_API if _is_api(path) else NO_BODY
    return rule_of(match.func) or (UNKNOWN_API if _is_api(path) else NO_BODY)


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIX) or path == "/v1"


def bare_page(status: int, title: str, message: str) -> str:
    """A page without layout, for a gate that is given no renderer."""
    title, message = html.escape(title), html.escape(message)
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f'<main><h1>{title}</h1><p>{message} <a href="/">Back to the console</a></p>'
        "</main></html>"
    )


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def carries_body(scope: Scope) -> bool:
    """Whether the request announces a body (a length above zero, or a chunked one)."""
    length = header(scope, b"content-length")
    if length is not None:
        return not length.isdigit() or int(length) > 0
    return header(scope, b"transfer-encoding") is not None


def token_allowed(caller: Caller, token: str | None, config: Config) -> bool:
    """Whether a bearer ``token`` is a credential of ``caller`` (constant time)."""
    if caller == "none":
        return True
    if token is None:
        return False
    auth = config.auth
    if caller == "producer":
        return match_token(token, auth.bearer_tokens) is not None
    if caller == "worker":
        return match_token(token, auth.worker_tokens) is not None
    if caller == "any":
        producer = match_token(token, auth.bearer_tokens)
        worker = match_token(token, auth.worker_tokens)
        return producer is not None or worker is not None
    if caller == "metrics":
        return (
            bool(auth.metrics_token) and match_token(token, {"m": auth.metrics_token}) is not None
        )
    return False


class Answers:
    """The gate's own answers, in the format of the part of the site a path belongs to."""

    def __init__(self, send: Send, scope: Scope, page: ErrorPage = bare_page) -> None:
        self.send = send
        self.path: str = scope["path"]
        self.page = page
        accept = header(scope, b"accept") or ""
        self.api = _is_api(self.path)
        self.json = self.api or accept.startswith("application/json")
        self.linger: Callable[[], Awaitable[None]] | None = None
        """Run after the answer's bytes are out and before the answer ends (and the server
        closes the connection): :func:`discard_body`."""

    async def refuse(self, caller: Caller, token: str | None) -> None:
        if self.api:
            worker = "worker " if caller == "worker" else ""
            message = (
                f"Invalid {worker}bearer token." if token else f"Missing {worker}bearer token."
            )
            await self._json(401, message, "authentication_error", "invalid_api_key", None)
        elif caller == "metrics":
            await self._plain(401, "Invalid or missing metrics token.")
        elif self.json:
            await self._json(403, SIGN_IN_FIRST, "permission_error", "not_signed_in", None)
        else:
            await self._page(403, "Sign in first", SIGN_IN_FIRST)

    async def too_large(self, kind: BodyKind, cap: int) -> None:
        is_file = kind in ("upload", "staged")
        if is_file:
            # The views' own wording, so a client sees one message whichever layer refused.
            limit = human_bytes(cap - MULTIPART_SLACK)
            message = (
                f"Uploaded file exceeded {limit} transcription limit."
                if kind == "upload"
                else f"Uploaded file exceeded the configured {limit} batch staging limit."
            )
        else:
            message = f"The request body exceeded the {human_bytes(cap)} limit of this path."
        if self.json:
            param = "file" if is_file else None
            await self._json(413, message, "invalid_request_error", "payload_too_large", param)
        else:
            await self._page(413, "File too large" if is_file else "Too large", message)

    async def disk_full(self) -> None:
        message = "The server is out of temporary disk space; try again later."
        if self.json:
            await self._json(507, message, "server_error", "insufficient_storage", None)
        else:
            await self._page(507, "Out of disk space", message)

    async def _json(
        self, status: int, message: str, kind: str, code: str, param: str | None
    ) -> None:
        error = {"message": message, "type": kind, "param": param, "code": code}
        await self._respond(status, b"application/json", json.dumps({"error": error}))

    async def _plain(self, status: int, text: str) -> None:
        await self._respond(status, b"text/plain; charset=utf-8", text + "\n")

    async def _page(self, status: int, title: str, text: str) -> None:
        await self._respond(status, b"text/html; charset=utf-8", self.page(status, title, text))

    async def _respond(self, status: int, content_type: bytes, body: str) -> None:
        payload = body.encode()
        extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(payload)).encode()),
                    # The body may be unread: the connection cannot carry another request.
                    (b"connection", b"close"),
                    *extra,
                ],
            }
        )
        linger, self.linger = self.linger, None
        await self.send({"type": "http.response.body", "body": payload, "more_body": bool(linger)})
        if linger is not None:
            # The client has the whole answer (its length is declared); the server reads on
            # until the answer ends, and closes the connection only then.
            await linger()
            await self.send({"type": "http.response.body", "body": b""})


class BodyGate:
    """ASGI: caps and credential checks for request bodies (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        config: Callable[[], Config],
        signed_in: SignedIn,
        static_prefix: str,
        page: ErrorPage = bare_page,
    ) -> None:
        self.app = app
        self.config = config
        self.signed_in = signed_in
        self.static_prefix = static_prefix
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.config()
        answers = Answers(send, scope, self.page)
        rule = rule_for(scope["path"], self.static_prefix)
        kind = rule.body
        if carries_body(scope) and not await self._has_credential(rule.caller, scope, config):
            if rule.visitor_body is None:
                token = bearer_from_header(header(scope, b"authorization"))
                cap = body_cap(kind, config)
                answers.linger = lambda: discard_body(scope, receive, cap)
                await answers.refuse(rule.caller, token)
                return
            kind = rule.visitor_body
        cap = body_cap(kind, config)
        await run_capped(self.app, scope, receive, send, cap, answers, kind)

    async def _has_credential(self, caller: Caller, scope: Scope, config: Config) -> bool:
        if caller == "operator":
            return await self.signed_in(scope)
        return token_allowed(caller, bearer_from_header(header(scope, b"authorization")), config)


async def discard_body(scope: Scope, receive: Receive, cap: int) -> None:
    """Read and throw away what the client goes on sending after a refusal, up to ``cap``
    bytes and :data:`DISCARD_SECONDS`, as web servers do (nginx's lingering close).

    The answer is already out; but a client that writes its whole body before it reads
    (urllib, many upload tools) would otherwise run into a closed connection and see a reset
    instead of the 401. Nothing is kept, so this costs bandwidth, not memory or disk; a
    declared length over the cap is not waited for."""
    declared = header(scope, b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        return
    deadline = asyncio.get_running_loop().time() + DISCARD_SECONDS
    received = 0
    with contextlib.suppress(TimeoutError):
        while received <= cap:
            remaining = deadline - asyncio.get_running_loop().time()
            event = await asyncio.wait_for(receive(), timeout=max(0.0, remaining))
            if event["type"] != "http.request":
                return
            received += len(event.get("body", b""))
            if not event.get("more_body", False):
                return


async def run_capped(  # noqa: PLR0917 - an ASGI call plus its cap and its answers
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    cap: int,
    answers: Answers,
    kind: BodyKind,
) -> None:
    """Run ``app`` with at most ``cap`` body bytes: a larger ``Content-Length`` is refused at
    once; a streamed body is cut off when it passes the cap (the app sees a disconnect) and,
    if the app has not answered yet, the gate answers 413. A full disk while the app spools
    the body answers 507."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        await answers.too_large(kind, cap)
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

    try:
        await app(scope, limited_receive, tracking_send)
    except OSError as exc:
        if exc.errno not in DISK_FULL or started:
            raise
        await answers.disk_full()
        return
    except Exception:
        # Some apps raise on the disconnect the cut-off body looks like (asgiref's WSGI
        # adapter behind the static files does); the cause is the cap, not the app.
        if not exceeded or started:
            raise
    if exceeded and not started:
        await answers.too_large(kind, cap)

"""The worker's HTTP client for the ``/v1/internal/`` protocol (urllib3, connections kept alive)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any, TypeVar

import urllib3
from pydantic import BaseModel
from urllib3.exceptions import HTTPError, ProtocolError

from voxhelm import __version__, boundedjson
from voxhelm.errors import InvalidJson

M = TypeVar("M", bound=BaseModel)

USER_AGENT = f"voxhelm-remote-worker/{__version__}"
MAX_ERROR_BODY = 500


class ApiFailure(Exception):
    """The server answered with a status of 300 or more, or with an unreadable answer."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:MAX_ERROR_BODY]}")
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        """The error envelope's message, or the raw body."""
        try:
            return str(boundedjson.decode(self.body)["error"]["message"])
        except (ValueError, KeyError, TypeError):  # InvalidJson is a ValueError
            return self.body[:MAX_ERROR_BODY]


class Unreachable(Exception):
    """The server could not be reached (connection refused, timeout, DNS, TLS)."""


class WorkerClient:
    """POSTs protocol models as JSON with the worker's bearer token.

    Connections are kept alive for as long as the server keeps them. Nothing is retried but
    a request the server closed unanswered (:meth:`_send`): the poll loop backs off, and a
    missed beat has slack in the lease. No redirect is followed: the token goes to the
    configured server only. TLS is verified against the system's trust store, which
    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` replace.
    """

    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        # urllib3 would take "voxhelm.lan" for plain HTTP and send the token unencrypted.
        if urllib3.util.parse_url(base_url).scheme not in ("http", "https"):
            raise ValueError(f"the server's URL must start with https:// or http://: {base_url}")
        self.base_url = base_url.rstrip("/")
        self._pool = _pool_for(
            self.base_url,
            retries=False,
            # A server that answers at all accepts a connection within milliseconds.
            timeout=urllib3.Timeout(connect=min(10.0, timeout), read=timeout),
            # The lease keeper's thread may post while the job's thread does.
            maxsize=2,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def __repr__(self) -> str:  # never show the token
        return f"WorkerClient({self.base_url!r})"

    def post(self, path: str, body: BaseModel, answer: type[M]) -> M | None:
        """POST ``body``; the answer parsed as ``answer``, or None for 204 No Content."""
        data = self.post_raw(path, body.model_dump(mode="json", exclude_none=True))
        return None if data is None else answer.model_validate(data)

    def post_raw(self, path: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = self._send(f"{self.base_url}{path}", payload)
            raw = response.read()
        except HTTPError as exc:
            raise Unreachable(f"{self.base_url}: {exc}") from None
        if response.status >= 300:
            raise ApiFailure(response.status, raw.decode("utf-8", "replace"))
        if response.status == 204 or not raw:
            return None
        try:
            return boundedjson.decode_object(
                raw, subject="The server's answer", not_object="the answer was not a JSON object"
            )
        except InvalidJson as exc:
            raise ApiFailure(200, exc.message) from None

    def _send(self, url: str, payload: dict[str, Any]) -> urllib3.BaseHTTPResponse:
        # ASCII JSON, not urllib3's json=: a lone surrogate (say, in an error message) stays
        # an escape the server refuses instead of failing to encode here.
        body = json.dumps(payload).encode("ascii")
        # decode_content=False: an answer is never compressed unless asked, and a compressed
        # one stays unreadable rather than being inflated to any size. The body is read by
        # the caller, so a connection lost once the answer began is not tried again.
        options: dict[str, Any] = {"body": body, "decode_content": False, "preload_content": False}
        try:
            return self._pool.request("POST", url, **options)
        except ProtocolError as exc:
            if not any(isinstance(arg, ConnectionError) for arg in exc.args):
                raise
        # The server closed the connection without answering: most often a kept-alive one it
        # closed for idling (uvicorn does after 5 s, the idle poll interval) just as this
        # request went out, unread. Once more on a new connection; a timeout is never retried
        # (the server may still be working on a claim).
        return self._pool.request("POST", url, **options)


def _pool_for(base_url: str, **options: Any) -> urllib3.PoolManager:
    """Connections to the server, through the proxy that ``HTTP(S)_PROXY`` name unless
    ``NO_PROXY`` lists the server. urllib3 reads no environment; the standard library's
    reading of these variables is the one every Python client follows."""
    target = urllib.parse.urlsplit(base_url)
    proxy = urllib.request.getproxies().get(target.scheme, "")
    if not proxy or urllib.request.proxy_bypass(target.netloc):
        return urllib3.PoolManager(**options)
    proxy = proxy if "://" in proxy else f"http://{proxy}"
    auth = urllib3.util.parse_url(proxy).auth
    basic = urllib3.make_headers(proxy_basic_auth=urllib.parse.unquote(auth or ""))
    return urllib3.ProxyManager(proxy, proxy_headers=basic, **options)

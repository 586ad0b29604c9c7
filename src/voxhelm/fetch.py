"""The one guarded HTTP downloader: allowlisted, SSRF-safe, size- and time-bounded URL fetches.

Every URL the service downloads (sync and batch inputs, known-speaker references, worker
downloads) goes through :func:`fetch_to_file`. The host must be allowlisted, every address it
resolves to must be public unless the host is a trusted internal one, the connection goes to
the address that was checked (no second lookup, so DNS rebinding cannot swap it), and every
redirect hop is checked again. Proxy environment variables are never consulted.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin

from voxhelm import __version__
from voxhelm.config import Config
from voxhelm.errors import InvalidInput
from voxhelm.netpolicy import (
    IPAddress,
    TargetUrl,
    UrlNotAllowed,
    allowlist_entry,
    canonical_host,
    is_public_address,
    parse_url,
)

__all__ = [
    "DownloadTooLarge",
    "FetchFailed",
    "FetchPolicy",
    "FetchedFile",
    "UrlNotAllowed",
    "check_url",
    "fetch_to_file",
    "resolve",
]

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = f"voxhelm/{__version__}"
_RESERVED_HEADERS = frozenset({"host", "accept-encoding", "connection", "content-length"})
_TIMED_OUT = "URL fetch failed: timed out."


class FetchFailed(InvalidInput):
    """The download itself failed: HTTP error, timeout, TLS or connection problem."""

    code = "fetch_failed"


class DownloadTooLarge(InvalidInput):
    """The remote media is larger than the policy's byte cap."""

    code = "download_too_large"


@dataclass(frozen=True)
class FetchPolicy:
    """What may be fetched, and how much and how long.

    ``allowed_hosts`` is the exact host allowlist (``VOXHELM_ALLOWED_URL_HOSTS``: ``host``
    for ports 80 and 443, ``host:port`` for another port, ``host:*`` for any);
    ``trusted_http_hosts`` (``VOXHELM_TRUSTED_HTTP_HOSTS``) may also use plain http and
    resolve to private or loopback addresses. Entries are normalized on construction, and IP
    literals in any spelling (``2130706433``, ``[::1]``) are stored in canonical form.
    Timeouts are seconds; ``total_timeout`` bounds the whole download including redirects.
    ``ssl_context`` replaces the system trust store (tests pass one trusting a test CA).
    """

    allowed_hosts: frozenset[str]
    trusted_http_hosts: frozenset[str]
    max_bytes: int
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_redirects: int = 5
    accept: str = "audio/*;q=1.0,*/*;q=0.1"
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_redirects < 0:
            raise ValueError("max_bytes must be positive and max_redirects not negative")
        if min(self.connect_timeout, self.read_timeout, self.total_timeout) <= 0:
            raise ValueError("fetch timeouts must be positive")
        allowed = frozenset(allowlist_entry(h) for h in self.allowed_hosts if h.strip())
        trusted = frozenset(canonical_host(h) for h in self.trusted_http_hosts if h.strip())
        object.__setattr__(self, "allowed_hosts", allowed)
        object.__setattr__(self, "trusted_http_hosts", trusted)


def configured_policy(config: Config, *, max_bytes: int, accept: str) -> FetchPolicy:
    """The policy of the service's settings (allowlist, trusted hosts, URL fetch timeout)."""
    return FetchPolicy(
        allowed_hosts=config.fetch.allowed_url_hosts,
        trusted_http_hosts=config.fetch.trusted_http_hosts,
        max_bytes=max_bytes,
        total_timeout=float(config.limits.url_fetch_timeout_seconds),
        accept=accept,
    )


@dataclass(frozen=True)
class FetchedFile:
    """A completed download: a temporary file the caller now owns and must delete."""

    path: Path
    final_url: str  # after redirects, normalized, without fragment
    content_type: str  # media type without parameters, lowercased; "" when not sent
    size: int  # decoded bytes written
    filename: str  # basename of the final URL path, or "input"


def check_url(url: str, policy: FetchPolicy) -> str:
    """Check a URL's syntax, scheme and host against ``policy`` without any I/O.

    Returns the normalized URL (lowercased host, canonical IP literal, default port and
    fragment dropped). Raises :class:`UrlNotAllowed`. The address check happens later, in
    :func:`fetch_to_file`, because it needs DNS.
    """
    return _parse(url, policy).url


def _parse(url: str, policy: FetchPolicy) -> TargetUrl:
    return parse_url(url, policy.allowed_hosts, policy.trusted_http_hosts)


def resolve(host: str, port: int) -> list[str]:
    """Resolve ``host`` to its addresses: the only DNS lookup a fetch makes per hop."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in infos))


def _checked_addresses(url: TargetUrl, policy: FetchPolicy) -> list[IPAddress]:
    if url.ip is not None:
        candidates: list[IPAddress] = [url.ip]
    else:
        unresolved = FetchFailed("URL fetch failed: the host name could not be resolved.")
        try:
            candidates = [ipaddress.ip_address(a) for a in resolve(url.host, url.port)]
        except (OSError, UnicodeError, ValueError):
            raise unresolved from None
        if not candidates:
            raise unresolved
    if url.host not in policy.trusted_http_hosts:
        # Every address must pass, not just the first: the resolver's order is not ours.
        refused = [ip for ip in candidates if not is_public_address(ip)]
        if refused:
            logger.warning("Refused fetch from %s: resolves to %s", url.host, refused[0])
            raise UrlNotAllowed("URL resolves to a non-public address.")
    return candidates


class _Deadline:
    """The total time budget of one fetch, enforced by closing the socket when it runs out."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self.fired = False

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0 or self.fired:
            raise FetchFailed(_TIMED_OUT)
        return left

    def watch(self, conn: _PinnedConnection) -> threading.Timer:
        # A socket timeout only bounds one recv; a server dripping a byte at a time (even in
        # the headers or the TLS handshake) would never trip it. Shutting the socket down from
        # a timer wakes any blocked read at once.
        timer = threading.Timer(self.remaining(), self._abort, (conn,))
        timer.daemon = True
        timer.start()
        return timer

    def _abort(self, conn: _PinnedConnection) -> None:
        self.fired = True
        if conn.sock is not None:
            # The plain socket method: SSLSocket.shutdown would drop its TLS state under
            # the reading thread.
            with suppress(OSError):
                socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to addresses checked in advance, never to a name."""

    def __init__(self, url: TargetUrl, policy: FetchPolicy, deadline: _Deadline) -> None:
        super().__init__(url.host.strip("[]"), url.port, timeout=policy.read_timeout)
        self._addresses = _checked_addresses(url, policy)
        self._policy = policy
        self._deadline = deadline
        self._tls = (
            (policy.ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        )
        self._timer: threading.Timer | None = None

    def connect(self) -> None:
        self.sock = self._open_socket()
        self._timer = self._deadline.watch(self)
        if self._tls is not None:
            # SNI and certificate verification use the URL's host name, not the address.
            tls = self._tls.wrap_socket(
                self.sock, server_hostname=self.host, do_handshake_on_connect=False
            )
            self.sock = tls
            tls.do_handshake()

    def _open_socket(self) -> socket.socket:
        error: OSError = ConnectionError("no address to connect to")
        for ip in self._addresses:
            family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(min(self._policy.connect_timeout, self._deadline.remaining()))
                sock.connect((str(ip), self.port))
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._policy.read_timeout)
            return sock
        raise error

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().close()


class _Decoder:
    """Undoes gzip/deflate incrementally so the byte cap counts decoded bytes (bomb safe)."""

    def __init__(self, encoding: str | None) -> None:
        encoding = (encoding or "").strip().lower()
        if encoding in ("", "identity"):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._zlib = self._new_stream()
        else:
            raise FetchFailed("URL fetch failed: unsupported content encoding.")

    @staticmethod
    def _new_stream() -> zlib._Decompress:
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, auto-detected

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            yield data
            return
        while data:
            try:
                # max_length bounds the memory one compressed chunk can expand into.
                piece = self._zlib.decompress(data, CHUNK_BYTES)
            except zlib.error:
                raise FetchFailed("URL fetch failed: invalid compressed body.") from None
            if piece:
                yield piece
            if self._zlib.eof:  # a gzip file may hold several members
                data = self._zlib.unused_data
                if data:
                    self._zlib = self._new_stream()
            else:
                data = self._zlib.unconsumed_tail

    def finish(self) -> None:
        if self._zlib is not None and not self._zlib.eof:
            raise FetchFailed("URL fetch failed: the compressed body was incomplete.")


@contextmanager
def _fetch_errors(deadline: _Deadline) -> Iterator[None]:
    """Turn network errors into short client-safe messages (no addresses, no paths).

    Only network calls run under it: a local disk error is an internal error, not the
    remote side's fault, and must not be reported as a failed fetch.
    """
    try:
        yield
    except ssl.SSLCertVerificationError:
        raise FetchFailed("URL fetch failed: TLS certificate verification failed.") from None
    except (OSError, http.client.HTTPException) as exc:
        if deadline.fired or isinstance(exc, TimeoutError):
            raise FetchFailed(_TIMED_OUT) from None
        if isinstance(exc, ssl.SSLError):
            reason = "TLS error"
        elif isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(exc, http.client.HTTPException):
            reason = "invalid HTTP response"
        else:
            reason = "connection error"
        logger.info("URL fetch failed: %s", type(exc).__name__)
        raise FetchFailed(f"URL fetch failed: {reason}.") from None


def fetch_to_file(
    url: str,
    policy: FetchPolicy,
    directory: Path,
    *,
    headers: Mapping[str, str] | None = None,
) -> FetchedFile:
    """Download ``url`` into a new temporary file in ``directory`` under ``policy``.

    ``directory`` is a work folder of the caller (:class:`~voxhelm.workdirs.Workdir`), so
    that a download cut short by a crash is swept with it.

    Follows up to ``policy.max_redirects`` redirects, checking each hop like the first.
    ``headers`` (e.g. a worker's ``Authorization``) go to the first request only and are
    never forwarded to a redirect target. On any error the partial file is removed and
    :class:`UrlNotAllowed`, :class:`FetchFailed` or :class:`DownloadTooLarge` is raised.
    """
    extra = dict(headers or {})
    if any(name.lower() in _RESERVED_HEADERS for name in extra):
        raise ValueError("headers must not set Host, Accept-Encoding, Connection or length")
    deadline = _Deadline(policy.total_timeout)
    current = _parse(url, policy)
    for _hop in range(policy.max_redirects + 1):
        conn = _PinnedConnection(current, policy, deadline)
        try:
            request_headers = {
                "Host": current.authority,
                "User-Agent": USER_AGENT,
                "Accept": policy.accept,
                "Accept-Encoding": "identity",
                "Connection": "close",
                **extra,
            }
            with _fetch_errors(deadline):
                conn.request("GET", current.target, headers=request_headers)
                response = conn.getresponse()
            if response.status == 200:
                return _save(response, current, policy, directory, deadline)
            if response.status not in REDIRECT_STATUSES:
                raise FetchFailed(f"URL fetch failed with HTTP {response.status}.")
            location = response.getheader("Location")
            if not location:
                raise FetchFailed("URL fetch failed: redirect without a Location header.")
            current = _parse(urljoin(current.url, location.strip()), policy)
            extra = {}  # credentials never cross a redirect, not even to the same host
        finally:
            conn.close()
    raise FetchFailed("URL fetch failed: too many redirects.")


def post_json(
    url: str,
    body: bytes,
    policy: FetchPolicy,
    *,
    headers: Mapping[str, str] | None = None,
) -> int:
    """POST ``body`` (JSON) to ``url`` under ``policy``; returns the HTTP status.

    The same checks as a download (allowlist, scheme, every resolved address, a total
    deadline), but redirects are not followed: a 3xx is returned as the status, so a
    webhook receiver cannot bounce the request (and its signature) somewhere else. At most
    ``policy.max_bytes`` of the answer are read and thrown away.
    """
    extra = dict(headers or {})
    if any(name.lower() in _RESERVED_HEADERS for name in extra):
        raise ValueError("headers must not set Host, Accept-Encoding, Connection or length")
    deadline = _Deadline(policy.total_timeout)
    target = _parse(url, policy)
    conn = _PinnedConnection(target, policy, deadline)
    try:
        with _fetch_errors(deadline):
            conn.request(
                "POST",
                target.target,
                body=body,
                headers={
                    "Host": target.authority,
                    "User-Agent": USER_AGENT,
                    "Content-Type": "application/json",
                    "Accept-Encoding": "identity",
                    "Connection": "close",
                    **extra,
                },
            )
            response = conn.getresponse()
            response.read(policy.max_bytes)
        return int(response.status)
    finally:
        conn.close()


def _save(
    response: http.client.HTTPResponse,
    url: TargetUrl,
    policy: FetchPolicy,
    directory: Path,
    deadline: _Deadline,
) -> FetchedFile:
    if response.length is not None and response.length > policy.max_bytes:
        raise DownloadTooLarge("Remote media exceeded the configured download limit.")
    decoder = _Decoder(response.getheader("Content-Encoding"))
    fd, name = tempfile.mkstemp(prefix="voxhelm-fetch-", dir=directory)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while data := _read(response, deadline):
                for piece in decoder.feed(data):
                    size += len(piece)
                    if size > policy.max_bytes:
                        raise DownloadTooLarge(
                            "Remote media exceeded the configured download limit."
                        )
                    out.write(piece)
            decoder.finish()
            if response.length:  # read1 reports a short body as EOF, not as an error
                raise FetchFailed("URL fetch failed: the connection closed early.")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    content_type = (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
    return FetchedFile(path, url.url, content_type, size, _filename(url))


def _read(response: http.client.HTTPResponse, deadline: _Deadline) -> bytes:
    with _fetch_errors(deadline):
        data = response.read1(CHUNK_BYTES)
    deadline.remaining()  # an EOF may be the deadline's doing
    return data


def _filename(url: TargetUrl) -> str:
    name = unquote(url.target.split("?", 1)[0].rsplit("/", 1)[-1])
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:255]
    return name if name not in ("", ".", "..") else "input"

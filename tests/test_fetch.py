"""The guarded downloader: URL policy, address checks, redirects, limits and deadlines.

Everything runs against real HTTP(S) servers on loopback. The only fake is ``fetch.resolve``
(and, in one test, the socket connect), because public addresses cannot be reached here.
"""

from __future__ import annotations

import gzip
import http.server
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.loopback import ThreadedServer
from voxhelm import fetch
from voxhelm.fetch import (
    DownloadTooLarge,
    FetchFailed,
    FetchPolicy,
    UrlNotAllowed,
    check_url,
    fetch_to_file,
)
from voxhelm.netpolicy import allowlist_entry, is_public_address, parse_ip_host

# A copy of shared/data/ssrf-corpus.txt, so a clone runs the suite on its own.
CORPUS = Path(__file__).resolve().parent / "data" / "ssrf-corpus.txt"
NON_PUBLIC = "URL resolves to a non-public address."
NOT_ALLOWLISTED = "URL host is not in the configured allowlist."
PLAIN_HTTP = "Plain HTTP URLs are only allowed for trusted internal hosts."
TOO_LARGE = "Remote media exceeded the configured download limit."
PUBLIC_IP = "93.184.215.14"
BODY = b"ID3" + bytes(range(256)) * 40

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # lowercased names


@dataclass
class LoopbackServer:
    """A threaded HTTP(S) server on 127.0.0.1 that records every connection and request."""

    tls: ssl.SSLContext | None = None
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    sni_names: list[str | None] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        owner = self

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                owner.requests.append(
                    Request(self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                self.close_connection = True
                owner.routes.get(path, not_found)(self)

            def log_message(self, *args: Any) -> None:
                pass

        if self.tls is not None:
            self.tls.sni_callback = lambda _sock, name, _ctx: self.sni_names.append(name)
        self.httpd = ThreadedServer(RequestHandler, tls=self.tls, on_connect=self._connected)
        self.port = self.httpd.start()

    def _connected(self, _address: Any) -> None:
        self.connections += 1

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def not_found(handler: http.server.BaseHTTPRequestHandler) -> None:
    respond(handler, b"missing", status=404, content_type="text/plain")


def respond(
    handler: http.server.BaseHTTPRequestHandler,
    body: bytes = BODY,
    *,
    status: int = 200,
    content_type: str = "audio/mpeg",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect_to(location: str, status: int = 302) -> Handler:
    def handle(handler: http.server.BaseHTTPRequestHandler) -> None:
        respond(handler, b"", status=status, headers={"Location": location})

    return handle


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    srv.routes["/media/talk.mp3"] = respond
    yield srv
    srv.stop()


@pytest.fixture
def canary() -> Iterator[LoopbackServer]:
    """A server no test may reach: its connection count must stay 0."""
    srv = LoopbackServer()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[LoopbackServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    srv = LoopbackServer(tls=context)
    srv.routes["/media/talk.mp3"] = respond
    yield srv
    srv.stop()


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    directory = tmp_path / "downloads"
    directory.mkdir()
    return directory


def make_policy(
    allowed: tuple[str, ...] = ("127.0.0.1:*", "localhost:*"),
    trusted: tuple[str, ...] = ("127.0.0.1",),
    **options: Any,
) -> FetchPolicy:
    options.setdefault("max_bytes", 1024 * 1024)
    options.setdefault("connect_timeout", 2.0)
    options.setdefault("read_timeout", 5.0)
    options.setdefault("total_timeout", 10.0)
    return FetchPolicy(frozenset(allowed), frozenset(trusted), **options)


@dataclass
class FakeResolver:
    """Stands in for DNS (names here cannot resolve to public addresses) and counts lookups."""

    answers: dict[str, list[str]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[host]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeResolver]:
    def install(**answers: list[str]) -> FakeResolver:
        resolver = FakeResolver({k.replace("_", "."): v for k, v in answers.items()})
        monkeypatch.setattr(fetch, "resolve", resolver)
        return resolver

    return install


class UnexpectedIO(AssertionError):
    pass


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fail on any DNS lookup or connect; the returned list records the attempts."""
    attempts: list[Any] = []

    def refuse(*args: Any) -> Any:
        attempts.append(args)
        raise UnexpectedIO(f"unexpected I/O: {args!r}")

    monkeypatch.setattr(fetch, "resolve", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


# --- success ------------------------------------------------------------------------------


def test_it_downloads_a_file_with_its_name_and_content_type(
    server: LoopbackServer, downloads: Path
) -> None:
    policy = make_policy()
    result = fetch_to_file(server.url("/media/talk.mp3?x=1#frag"), policy, downloads)

    assert result.path.read_bytes() == BODY
    assert result.path.parent == downloads
    assert result.size == len(BODY)
    assert result.filename == "talk.mp3"
    assert result.content_type == "audio/mpeg"
    assert result.final_url == server.url("/media/talk.mp3?x=1")
    (request,) = server.requests
    assert request.path == "/media/talk.mp3?x=1"
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert request.headers["user-agent"].startswith("voxhelm/")
    assert request.headers["accept"] == policy.accept
    assert request.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("path", "filename"),
    [("/", "input"), ("/dir/", "input"), ("/a%20b.wav", "a b.wav"), ("/x/%2e%2e", "input")],
)
def test_it_names_the_file_after_the_final_url(
    server: LoopbackServer, downloads: Path, path: str, filename: str
) -> None:
    server.routes[path] = respond
    assert fetch_to_file(server.url(path), make_policy(), downloads).filename == filename


def test_it_downloads_over_https_with_sni_and_the_host_name(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext, downloads: Path
) -> None:
    policy = make_policy(trusted=("localhost",), ssl_context=client_tls)
    result = fetch_to_file(tls_server.url("/media/talk.mp3", "localhost"), policy, downloads)

    assert result.path.read_bytes() == BODY
    assert tls_server.sni_names == ["localhost"]
    assert tls_server.requests[0].headers["host"] == f"localhost:{tls_server.port}"


def test_it_rejects_a_certificate_from_an_unknown_authority(
    tls_server: LoopbackServer, downloads: Path
) -> None:
    policy = make_policy(trusted=("localhost",))  # system trust store, not the test CA
    with pytest.raises(FetchFailed, match="TLS certificate verification failed"):
        fetch_to_file(tls_server.url("/media/talk.mp3", "localhost"), policy, downloads)
    assert tls_server.requests == []
    assert list(downloads.iterdir()) == []


def test_it_verifies_the_certificate_for_the_host_name_not_the_address(
    tls_server: LoopbackServer,
    client_tls: ssl.SSLContext,
    downloads: Path,
    fake_dns: Callable[..., FakeResolver],
) -> None:
    # The certificate is for localhost and 127.0.0.1; media.internal resolves to 127.0.0.1.
    fake_dns(media_internal=["127.0.0.1"])
    policy = make_policy(("media.internal:*",), ("media.internal",), ssl_context=client_tls)
    with pytest.raises(FetchFailed, match="TLS certificate verification failed"):
        fetch_to_file(tls_server.url("/media/talk.mp3", "media.internal"), policy, downloads)
    assert tls_server.sni_names == ["media.internal"]
    assert tls_server.requests == []


# --- the URL and address policy ---------------------------------------------------------------


def test_it_refuses_loopback_for_an_allowlisted_but_untrusted_host(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext, downloads: Path
) -> None:
    policy = make_policy(("localhost:*",), (), ssl_context=client_tls)  # real lookup of localhost
    with pytest.raises(UrlNotAllowed, match=NON_PUBLIC) as raised:
        fetch_to_file(tls_server.url("/media/talk.mp3", "localhost"), policy, downloads)
    assert raised.value.code == "url_not_allowed"
    assert "127.0.0.1" not in raised.value.message
    assert tls_server.connections == 0


def test_it_rejects_plain_http_to_an_untrusted_host(
    server: LoopbackServer, downloads: Path
) -> None:
    with pytest.raises(UrlNotAllowed, match=PLAIN_HTTP):
        fetch_to_file(server.url("/media/talk.mp3"), make_policy(trusted=()), downloads)
    assert server.connections == 0


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["fd00::1"],
        ["::ffff:127.0.0.1"],
        ["169.254.169.254"],
        ["64:ff9b::a9fe:a9fe"],
        [PUBLIC_IP, "127.0.0.1"],
        ["127.0.0.1", PUBLIC_IP],
        [PUBLIC_IP, "2606:4700::1111", "100.64.1.1"],
    ],
)
def test_it_refuses_a_name_when_any_resolved_address_is_not_public(
    fake_dns: Callable[..., FakeResolver], no_io: list[Any], downloads: Path, addresses: list[str]
) -> None:
    resolver = fake_dns(media_example_com=addresses)
    policy = make_policy(("media.example.com:*",), ())
    with pytest.raises(UrlNotAllowed, match=NON_PUBLIC) as raised:
        fetch_to_file("https://media.example.com/a.mp3", policy, downloads)
    assert resolver.calls == [("media.example.com", 443)]
    assert no_io == []
    assert not any(address in raised.value.message for address in addresses)


def test_it_connects_to_the_address_it_checked(
    fake_dns: Callable[..., FakeResolver], monkeypatch: pytest.MonkeyPatch, downloads: Path
) -> None:
    # A rebinding resolver would answer differently the second time; there is no second time.
    resolver = fake_dns(media_example_com=[PUBLIC_IP])
    connected: list[Any] = []

    def record(sock: socket.socket, address: Any) -> None:
        connected.append(address)
        raise ConnectionRefusedError  # the public address is not reachable from tests

    monkeypatch.setattr(socket.socket, "connect", record)
    policy = make_policy(("media.example.com:*",), ())
    with pytest.raises(FetchFailed, match="connection refused"):
        fetch_to_file("https://media.example.com:8443/a.mp3", policy, downloads)
    assert connected == [(PUBLIC_IP, 8443)]
    assert resolver.calls == [("media.example.com", 8443)]


def test_it_reaches_a_trusted_name_through_the_resolved_address(
    server: LoopbackServer, fake_dns: Callable[..., FakeResolver], downloads: Path
) -> None:
    # Connecting to the name would fail: it only exists in the fake resolver (and the
    # netguard refuses names), so success proves the checked address was used.
    resolver = fake_dns(media_internal=["127.0.0.1"])
    policy = make_policy(("media.internal:*",), ("media.internal",))
    result = fetch_to_file(server.url("/media/talk.mp3", "media.internal"), policy, downloads)
    assert result.path.read_bytes() == BODY
    assert resolver.calls == [("media.internal", server.port)]
    assert server.requests[0].headers["host"] == f"media.internal:{server.port}"


def corpus_lines() -> list[str]:
    lines = [
        line.removesuffix("\n")
        for line in CORPUS.read_text(encoding="utf-8").splitlines(keepends=True)
        if line.strip() and not line.startswith("#")
    ]
    # The corpus spells a homoglyph and a NUL as escapes; try the real characters too.
    decoded = [
        line.encode().decode("unicode_escape") for line in lines if "\\u" in line or "\\x" in line
    ]
    return lines + decoded


@pytest.mark.parametrize("url", corpus_lines())
def test_it_rejects_every_corpus_url_without_io(
    url: str, no_io: list[Any], downloads: Path
) -> None:
    policy = make_policy(("media.example.com:*",), ())
    with pytest.raises(UrlNotAllowed):
        fetch_to_file(url, policy, downloads)
    assert no_io == []
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "127.1",
        "127.0.1",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "2130706433",
        "017700000001",
        "127.000.000.001",
        "0.0.0.0",
        "0",
        "[::]",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::127.0.0.1]",
        "[64:ff9b:1::a00:1]",
        "[2002:7f00:1::]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
        "169.254.169.254",
        "2852039166",
        "[::ffff:a9fe:a9fe]",
        "[fd00:ec2::254]",
        "169.254.170.2",
        "100.100.100.200",
        "192.0.0.192",
        "168.63.129.16",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "198.18.0.1",
        "192.0.2.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "[fc00::1]",
        "[fe80::1]",
        "[fec0::1]",
        "[ff02::1]",
        "[2001:db8::1]",
    ],
)
def test_it_refuses_internal_addresses_even_when_allowlisted(
    host: str, canary: LoopbackServer, downloads: Path
) -> None:
    policy = make_policy((f"{host}:*",), ())
    with pytest.raises(UrlNotAllowed, match=NON_PUBLIC):
        fetch_to_file(f"https://{host}:{canary.port}/a.mp3", policy, downloads)
    assert canary.connections == 0


def test_it_ignores_proxy_environment_variables(
    server: LoopbackServer,
    canary: LoopbackServer,
    downloads: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, canary.url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    result = fetch_to_file(server.url("/media/talk.mp3"), make_policy(), downloads)
    assert result.path.read_bytes() == BODY
    assert canary.connections == 0
    assert len(server.requests) == 1


# --- check_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://Media.Example.COM./a.mp3#t=10", "https://media.example.com/a.mp3"),
        ("https://media.example.com:443", "https://media.example.com/"),
        ("https://media.example.com:8443/a?b=c", "https://media.example.com:8443/a?b=c"),
        ("https://media.example.com/caf\u00e9.mp3", "https://media.example.com/caf%C3%A9.mp3"),
        ("http://0x7f000001:8000/x", "http://127.0.0.1:8000/x"),
        ("http://[0:0:0:0:0:0:0:1]/x", "http://[::1]/x"),
    ],
)
def test_it_normalizes_allowed_urls(url: str, normalized: str) -> None:
    allowed = ("media.example.com", "media.example.com:8443", "2130706433:8000", "::1")
    policy = make_policy(allowed, ("127.0.0.1", "[::1]"))
    assert check_url(url, policy) == normalized


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "URL input must include a hostname."),
        ("https:///a.mp3", "URL input must include a hostname."),
        ("https://evil.test/a.mp3", NOT_ALLOWLISTED),
        ("https://media.example.com.evil.test/a.mp3", NOT_ALLOWLISTED),
        ("http://media.example.com/a.mp3", PLAIN_HTTP),
        ("ftp://media.example.com/a.mp3", "Only https URLs are allowed by default."),
        ("hls+http://media.example.com/a.m3u8", "Only https URLs are allowed by default."),
        ("https://user:secret@media.example.com/a", "must not contain user credentials"),
        ("https://media.example.com:0/a.mp3", "URL port is not valid."),
        ("https://media.example.com:65536/a.mp3", "URL port is not valid."),
        ("https://media.example.com:+443/a.mp3", "URL port is not valid."),
        ("https://media.example.com:/a.mp3", "URL port is not valid."),
        ("https://media%2Eexample.com/a.mp3", "not a valid host name"),
        ("https://1.2.3.4.5/a.mp3", "not a valid host name"),
        ("https://08.0.0.1/a.mp3", "not a valid host name"),
        ("https://[::1%25eth0]/a.mp3", "not a valid host name"),
        ("https://media.example.com/a\r\nX: y", "control characters"),
        ("https://media.example.com/a b.mp3", "control characters"),
    ],
)
def test_it_rejects_urls_before_any_io(url: str, message: str, no_io: list[Any]) -> None:
    with pytest.raises(UrlNotAllowed, match=message) as raised:
        check_url(url, make_policy(("media.example.com",), ()))
    assert "secret" not in raised.value.message
    assert no_io == []


def test_it_canonicalizes_the_configured_hosts() -> None:
    policy = make_policy(("Media.Example.COM.", "0x7f000001", "::1", " "), ("[::1]",))
    assert policy.allowed_hosts == {"media.example.com", "127.0.0.1", "[::1]"}
    assert policy.trusted_http_hosts == {"[::1]"}


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.258", "10.1.1.2"),
        ("0", "0.0.0.0"),
        ("media.example.com", None),
        ("1.example.com", None),
    ],
)
def test_it_reads_numeric_hosts_like_inet_aton(host: str, address: str | None) -> None:
    ip = parse_ip_host(host)
    assert (None if ip is None else str(ip)) == address


@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC_IP, True),
        ("2606:4700::1111", True),
        ("::ffff:93.184.215.14", True),
        ("64:ff9b::5db8:d70e", True),  # DNS64 answer for a public host
        ("2002:5db8:d70e::1", True),
        ("168.63.129.16", False),
        ("2002:a9fe:a9fe::1", False),
        ("::5db8:d70e", False),  # IPv4-compatible form is deprecated: refused outright
    ],
)
def test_it_judges_embedded_ipv4_by_the_address_carried(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


# --- redirects --------------------------------------------------------------------------------


def chain(server: LoopbackServer, hops: int) -> str:
    for hop in range(hops):
        server.routes[f"/hop{hop}"] = redirect_to(
            f"/hop{hop + 1}", (301, 302, 303, 307, 308)[hop % 5]
        )
    server.routes[f"/hop{hops}"] = respond
    return server.url("/hop0")


def test_it_follows_five_redirects(server: LoopbackServer, downloads: Path) -> None:
    result = fetch_to_file(chain(server, 5), make_policy(), downloads)
    assert result.path.read_bytes() == BODY
    assert result.final_url == server.url("/hop5")
    assert result.filename == "hop5"


def test_it_stops_after_five_redirects(server: LoopbackServer, downloads: Path) -> None:
    with pytest.raises(FetchFailed, match="too many redirects"):
        fetch_to_file(chain(server, 6), make_policy(), downloads)
    assert [r.path for r in server.requests] == [f"/hop{i}" for i in range(6)]
    assert list(downloads.iterdir()) == []


def test_it_stops_a_redirect_loop(server: LoopbackServer, downloads: Path) -> None:
    server.routes["/loop"] = redirect_to("/loop")
    with pytest.raises(FetchFailed, match="too many redirects"):
        fetch_to_file(server.url("/loop"), make_policy(), downloads)
    assert len(server.requests) == 6


def test_it_rejects_a_redirect_to_a_host_outside_the_allowlist(
    server: LoopbackServer, canary: LoopbackServer, downloads: Path
) -> None:
    server.routes["/go"] = redirect_to(canary.url("/a.mp3", "localhost"))
    policy = make_policy(("127.0.0.1:*",), ("127.0.0.1",))
    with pytest.raises(UrlNotAllowed, match=NOT_ALLOWLISTED):
        fetch_to_file(server.url("/go"), policy, downloads)
    assert canary.connections == 0
    assert list(downloads.iterdir()) == []


def test_it_checks_the_address_of_every_redirect_hop(
    server: LoopbackServer, tls_server: LoopbackServer, downloads: Path
) -> None:
    server.routes["/go"] = redirect_to(tls_server.url("/media/talk.mp3", "localhost"))
    with pytest.raises(UrlNotAllowed, match=NON_PUBLIC):
        fetch_to_file(server.url("/go"), make_policy(), downloads)
    assert tls_server.connections == 0


def test_it_refuses_a_redirect_from_https_to_http(
    tls_server: LoopbackServer,
    canary: LoopbackServer,
    client_tls: ssl.SSLContext,
    downloads: Path,
) -> None:
    tls_server.routes["/go"] = redirect_to(canary.url("/a.mp3"))
    policy = make_policy(trusted=("localhost",), ssl_context=client_tls)
    with pytest.raises(UrlNotAllowed, match=PLAIN_HTTP):
        fetch_to_file(tls_server.url("/go", "localhost"), policy, downloads)
    assert canary.connections == 0


def test_it_allows_a_redirect_to_http_on_a_trusted_host(
    tls_server: LoopbackServer,
    server: LoopbackServer,
    client_tls: ssl.SSLContext,
    downloads: Path,
) -> None:
    tls_server.routes["/go"] = redirect_to(server.url("/media/talk.mp3"))
    policy = make_policy(trusted=("localhost", "127.0.0.1"), ssl_context=client_tls)
    result = fetch_to_file(tls_server.url("/go", "localhost"), policy, downloads)
    assert result.path.read_bytes() == BODY


def test_it_never_forwards_credentials_on_redirect(server: LoopbackServer, downloads: Path) -> None:
    def start(handler: http.server.BaseHTTPRequestHandler) -> None:
        respond(
            handler, b"", status=307, headers={"Location": "/media/talk.mp3", "Set-Cookie": "s=1"}
        )

    server.routes["/start"] = start
    headers = {"Authorization": "Bearer worker-secret"}
    fetch_to_file(server.url("/start"), make_policy(), downloads, headers=headers)
    first, second = server.requests
    assert first.headers["authorization"] == "Bearer worker-secret"
    assert "authorization" not in second.headers
    assert "cookie" not in second.headers


def test_it_rejects_credentials_in_a_redirect_target(
    server: LoopbackServer, downloads: Path
) -> None:
    server.routes["/go"] = redirect_to(server.url("/media/talk.mp3").replace("//", "//u:pw@"))
    with pytest.raises(UrlNotAllowed, match="credentials") as raised:
        fetch_to_file(server.url("/go"), make_policy(), downloads)
    assert "pw" not in raised.value.message
    assert len(server.requests) == 1


# --- limits, deadlines, clean-up --------------------------------------------------------------


def test_it_refuses_a_content_length_over_the_cap_before_reading(
    server: LoopbackServer, downloads: Path
) -> None:
    def huge(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.write(b"x" * 1024)
        server.stopping.wait(10)  # never sends the rest

    server.routes["/huge"] = huge
    started = time.monotonic()
    with pytest.raises(DownloadTooLarge, match=TOO_LARGE) as raised:
        fetch_to_file(server.url("/huge"), make_policy(), downloads)
    assert raised.value.code == "download_too_large"
    assert time.monotonic() - started < 2
    assert list(downloads.iterdir()) == []


def chunked(body: bytes, content_encoding: str = "") -> Handler:
    def handle(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        if content_encoding:
            handler.send_header("Content-Encoding", content_encoding)
        handler.end_headers()
        for start in range(0, len(body), 16384):
            piece = body[start : start + 16384]
            try:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            except OSError:
                return  # the client hung up at the cap
        handler.wfile.write(b"0\r\n\r\n")

    return handle


def test_it_stops_a_chunked_body_at_the_cap(server: LoopbackServer, downloads: Path) -> None:
    server.routes["/big"] = chunked(b"y" * (3 * 1024 * 1024))
    with pytest.raises(DownloadTooLarge, match=TOO_LARGE):
        fetch_to_file(server.url("/big"), make_policy(), downloads)
    assert list(downloads.iterdir()) == []


def test_it_accepts_a_chunked_body_under_the_cap(server: LoopbackServer, downloads: Path) -> None:
    server.routes["/ok"] = chunked(BODY * 20)
    result = fetch_to_file(server.url("/ok"), make_policy(), downloads)
    assert result.path.read_bytes() == BODY * 20


def test_it_counts_decoded_bytes_for_a_gzip_bomb(server: LoopbackServer, downloads: Path) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # about 64 KiB on the wire
    server.routes["/bomb"] = lambda h: respond(h, bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(DownloadTooLarge, match=TOO_LARGE):
        fetch_to_file(server.url("/bomb"), make_policy(), downloads)
    assert server.requests[0].headers["accept-encoding"] == "identity"
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        pytest.param("gzip", gzip.compress, id="gzip"),
        pytest.param("deflate", zlib.compress, id="deflate"),
        pytest.param(
            "gzip", lambda b: gzip.compress(b[:9]) + gzip.compress(b[9:]), id="gzip-two-members"
        ),
    ],
)
def test_it_decodes_a_compressed_body_sent_despite_identity(
    server: LoopbackServer, downloads: Path, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    server.routes["/z"] = chunked(encode(BODY), content_encoding=encoding)
    result = fetch_to_file(server.url("/z"), make_policy(), downloads)
    assert result.path.read_bytes() == BODY
    assert result.size == len(BODY)


def drip(where: str, stopping: threading.Event) -> Handler:
    def handle(handler: http.server.BaseHTTPRequestHandler) -> None:
        out = handler.wfile
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n"
        out.write(head if where == "headers" else head + b"\r\n")
        while not stopping.wait(0.2):
            try:
                out.write(b"X-Drip: y\r\n" if where == "headers" else b"y")
                out.flush()
            except OSError:
                return

    return handle


@pytest.mark.parametrize("where", ["headers", "body"])
def test_it_aborts_a_slow_drip_at_the_total_deadline(
    server: LoopbackServer, downloads: Path, where: str
) -> None:
    server.routes["/drip"] = drip(where, server.stopping)
    policy = make_policy(read_timeout=1.0, total_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="timed out"):
        fetch_to_file(server.url("/drip"), policy, downloads)
    assert 1.4 < time.monotonic() - started < 1.5 + 2
    assert list(downloads.iterdir()) == []


def test_it_applies_the_read_timeout(server: LoopbackServer, downloads: Path) -> None:
    def stall(handler: http.server.BaseHTTPRequestHandler) -> None:
        server.stopping.wait(10)

    server.routes["/stall"] = stall
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="timed out"):
        fetch_to_file(server.url("/stall"), make_policy(read_timeout=0.5), downloads)
    assert time.monotonic() - started < 2


GZIP = {"Content-Encoding": "gzip"}


@pytest.mark.parametrize(
    ("route", "message"),
    [
        pytest.param(
            lambda h: respond(h, b"gone", status=404),
            "URL fetch failed with HTTP 404.",
            id="http-404",
        ),
        pytest.param(
            lambda h: respond(h, b"", status=302), "without a Location", id="redirect-no-location"
        ),
        pytest.param(
            lambda h: respond(h, headers={"Content-Encoding": "br"}),
            "unsupported content encoding",
            id="brotli",
        ),
        pytest.param(
            lambda h: respond(h, b"not gzip", headers=GZIP),
            "invalid compressed body",
            id="not-gzip",
        ),
        pytest.param(
            lambda h: respond(h, gzip.compress(BODY)[:-20], headers=GZIP),
            "compressed body was incomplete",
            id="truncated-gzip",
        ),
    ],
)
def test_it_reports_http_and_body_errors(
    server: LoopbackServer, downloads: Path, route: Handler, message: str
) -> None:
    server.routes["/e"] = route
    with pytest.raises(FetchFailed, match=message) as raised:
        fetch_to_file(server.url("/e"), make_policy(), downloads)
    assert raised.value.code == "fetch_failed"
    assert str(downloads) not in raised.value.message
    assert list(downloads.iterdir()) == []


def test_it_removes_the_partial_file_when_the_connection_drops(
    server: LoopbackServer, downloads: Path
) -> None:
    def truncated(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"z" * 5000)

    server.routes["/cut"] = truncated
    with pytest.raises(FetchFailed, match="closed early"):
        fetch_to_file(server.url("/cut"), make_policy(), downloads)
    assert list(downloads.iterdir()) == []


def test_it_reports_a_refused_connection(canary: LoopbackServer, downloads: Path) -> None:
    port = canary.port
    canary.stop()
    with pytest.raises(FetchFailed, match="connection refused"):
        fetch_to_file(f"http://127.0.0.1:{port}/a.mp3", make_policy(), downloads)


# --- ports ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "url", "ok"),
    [
        (("media.example.com",), "https://media.example.com/a", True),
        (("media.example.com",), "https://media.example.com:443/a", True),
        (("media.example.com",), "https://media.example.com:80/a", True),
        (("media.example.com",), "https://media.example.com:8443/a", False),
        (("media.example.com",), "https://media.example.com:22/a", False),
        (("media.example.com",), "https://media.example.com:6379/a", False),
        (("media.example.com:8443",), "https://media.example.com:8443/a", True),
        (("media.example.com:8443",), "https://media.example.com:8444/a", False),
        (("media.example.com:8443",), "https://media.example.com/a", False),  # only 8443
        (("media.example.com:*",), "https://media.example.com:1/a", True),
        (("other.example.com:*", "media.example.com"), "https://media.example.com:81/a", False),
        (("[::1]:8080",), "http://[::1]:8080/a", True),
        (("[::1]:8080",), "http://[0:0::1]:8081/a", False),
        (("::1",), "http://[::1]:8080/a", False),
        (("2130706433:8000",), "http://127.0.0.1:8000/a", True),
    ],
)
def test_it_allows_only_standard_ports_unless_the_allowlist_names_one(
    allowed: tuple[str, ...], url: str, ok: bool
) -> None:
    policy = make_policy(allowed, ("[::1]", "127.0.0.1"))
    if ok:
        assert check_url(url, policy)
    else:
        with pytest.raises(UrlNotAllowed, match="port"):
            check_url(url, policy)


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("Media.LAN.:8080", "media.lan:8080"),
        ("media.lan", "media.lan"),
        ("media.lan:*", "media.lan:*"),
        ("[0:0::1]:*", "[::1]:*"),
        ("::1", "[::1]"),
        ("0x7f000001:8000", "127.0.0.1:8000"),
    ],
)
def test_it_canonicalizes_allowlist_entries_with_ports(entry: str, canonical: str) -> None:
    assert allowlist_entry(entry) == canonical

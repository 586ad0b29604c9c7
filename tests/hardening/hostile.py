"""Loopback servers that misbehave on purpose: a hostile media origin, a canary, a stand-in.

The hostile origin answers each path with one attack on a downloader (oversized, endless,
slow-drip and compressed-bomb bodies, redirects to places a fetch must not go). The canary
is a server nothing may ever reach; the stand-in plays "a public address" for the process
guard (``guard/sitecustomize.py``), so a fetch that connects to the address it checked can be
seen to do so.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = http.server.BaseHTTPRequestHandler
Route = Callable[[Handler], None]
STANDIN_ADDRESS = "93.184.215.14"  # a public address; the guard reroutes it to the stand-in
GZIP_BOMB_BYTES = 64 * 1024 * 1024  # decoded size; about 64 KiB on the wire
CHUNK = b"\0" * 16384


def respond(handler: Handler, body: bytes, status: int = 200, **headers: str) -> None:
    handler.send_response(status)
    headers.setdefault("Content-Type", "audio/mpeg")
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    return lambda handler: respond(handler, b"", status, Location=location)


@dataclass
class Origin:
    """A threaded HTTP server on 127.0.0.1 serving ``routes``; counts every connection."""

    routes: dict[str, Route] = field(default_factory=dict)
    connections: int = 0
    hits: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.hits.append(self.path)
                self.close_connection = True
                route = owner.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    respond(self, b"missing", 404, Content_Type="text/plain")
                    return
                with contextlib.suppress(OSError):  # the client hung up, as on an endless body
                    route(self)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                owner.connections += 1
                return True

        self.httpd = Server(("127.0.0.1", 0), RequestHandler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StandIn:
    """A TCP listener that accepts and closes: "the public address" the guard reroutes to."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def stop(self) -> None:
        self.sock.close()


def _endless(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "audio/mpeg")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    while True:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))


def _drip(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "audio/mpeg")
    handler.send_header("Content-Length", str(10**6))
    handler.end_headers()
    for _ in range(600):
        handler.wfile.write(b"\0")
        handler.wfile.flush()
        time.sleep(0.2)


def _drip_headers(handler: Handler) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\n" * 20:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)


def _oversized(cap: int) -> Route:
    def handle(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/mpeg")
        handler.send_header("Content-Length", str(cap + 1))
        handler.end_headers()
        handler.wfile.write(b"\0" * 1024)

    return handle


def _lying_length(cap: int) -> Route:
    """Declares a small body, then keeps sending (the cap must count what arrives)."""

    def handle(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/mpeg")
        handler.end_headers()  # no length: read to EOF
        sent = 0
        while sent <= cap * 4:
            handler.wfile.write(CHUNK)
            sent += len(CHUNK)

    return handle


def _gzip_bomb(body: bytes) -> Route:
    return lambda handler: respond(handler, body, Content_Encoding="gzip")


def hostile_routes(origin: str, canary_port: int, cap: int, speech_wav: bytes) -> dict[str, Route]:
    """The attack routes; ``origin`` is the allowlisted base URL the origin is reached by."""
    bomb = gzip.compress(b"\0" * GZIP_BOMB_BYTES, compresslevel=9)
    routes: dict[str, Route] = {
        "/speech.wav": lambda h: respond(h, speech_wav, Content_Type="audio/wav"),
        "/oversized": _oversized(cap),
        "/no-length": _lying_length(cap),
        "/endless": _endless,
        "/drip": _drip,
        "/drip-headers": _drip_headers,
        "/gzip-bomb": _gzip_bomb(bomb),
        "/loop": redirect(f"{origin}/loop"),
        "/to-canary": redirect(f"http://127.0.0.1:{canary_port}/x.mp3"),
        "/to-canary-decimal": redirect(f"http://2130706433:{canary_port}/x.mp3"),
        "/to-canary-v6": redirect(f"http://[::ffff:127.0.0.1]:{canary_port}/x.mp3"),
        "/to-private": redirect("https://private.test/x.mp3"),
        "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-downgrade": redirect("http://media.example.com/x.mp3"),
        "/to-file": redirect("file:///etc/passwd"),
        "/to-ftp": redirect("ftp://media.example.com/x.mp3"),
        "/to-gopher": redirect(f"gopher://127.0.0.1:{canary_port}/_x"),
        "/to-userinfo": redirect(f"http://hostile.test@127.0.0.1:{canary_port}/x.mp3"),
        "/to-scheme-relative": redirect(f"//127.0.0.1:{canary_port}/x.mp3"),
        "/to-crlf": redirect(f"{origin}/x%0d%0aHost:%20127.0.0.1"),
    }
    for hops in range(1, 8):
        target = "/speech.wav" if hops == 1 else f"/hops/{hops - 1}"
        routes[f"/hops/{hops}"] = redirect(f"{origin}{target}", 301 if hops % 2 else 307)
    return routes

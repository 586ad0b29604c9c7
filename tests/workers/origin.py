"""A loopback media origin for remote-worker tests: real HTTP, and paths that stall.

A stalled request sends its headers, then trickles the body one byte every half second for
``stall_seconds`` before sending the rest: a slow origin that keeps a worker busy (and its
lease beating) long enough for a test to kill, pause or stop it mid-job.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

TRICKLE_SECONDS = 0.5


@dataclass
class Origin:
    port: int = 0
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    stalls: dict[str, int] = field(default_factory=dict)  # path -> requests still to stall
    stall_seconds: float = 20.0
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, content_type: str, body: bytes, stalls: int = 0) -> str:
        self.files[path] = (content_type, body)
        self.stalls[path] = stalls
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        with self.lock:
            return self.hits.get(path, 0)


@contextmanager
def serve_origin() -> Iterator[Origin]:
    origin = Origin()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with origin.lock:
                origin.hits[self.path] = origin.hits.get(self.path, 0) + 1
                stall = origin.stalls.get(self.path, 0) > 0
                if stall:
                    origin.stalls[self.path] -= 1
            found = origin.files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            sent = 0
            try:
                if stall:
                    deadline = time.monotonic() + origin.stall_seconds
                    while time.monotonic() < deadline and sent < len(body) - 1:
                        self.wfile.write(body[sent : sent + 1])
                        self.wfile.flush()
                        sent += 1
                        time.sleep(TRICKLE_SECONDS)
                self.wfile.write(body[sent:])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the worker went away (killed): that is the point of a stall

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    origin.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        httpd.shutdown()
        httpd.server_close()

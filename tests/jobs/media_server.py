"""A loopback HTTP server that serves media files for URL jobs (real HTTP, real bytes)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MediaServer:
    """``files`` maps a path (``/episode.mp3``) to (content type, body); others are 404."""

    host: str = "127.0.0.1"
    port: int = 0
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add(self, path: str, content_type: str, body: bytes) -> str:
        self.files[path] = (content_type, body)
        return self.url(path)


@contextmanager
def serve_media() -> Iterator[MediaServer]:
    media = MediaServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            media.hits.append(self.path)
            if self.path in media.redirects:
                self.send_response(302)
                self.send_header("Location", media.redirects[self.path])
                self.end_headers()
                return
            found = media.files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    media.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield media
    finally:
        httpd.shutdown()
        httpd.server_close()

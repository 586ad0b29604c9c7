"""A threaded HTTP server on loopback for testing clients, plain or TLS.

The TLS handshake runs in the connection's own thread, so a client that never completes one
holds up no other connection; ``on_connect`` sees every accepted connection."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable
from typing import Any


class ThreadedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        handler: type[http.server.BaseHTTPRequestHandler],
        *,
        tls: ssl.SSLContext | None = None,
        on_connect: Callable[[Any], object] = lambda _address: None,
    ) -> None:
        self.tls = tls
        self.on_connect = on_connect
        super().__init__(("127.0.0.1", 0), handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.on_connect(client_address)
        return True

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:  # the handshake runs here, in the connection's thread
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with wrapped:
            super().finish_request(wrapped, client_address)

    def start(self) -> int:
        """Serve on a daemon thread; the port."""
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return int(self.server_address[1])

"""The connection cap of the guarded HTTP server, on a real socket with tiny limits.

The scheduled trim that closes idle heads past the cap runs on the event loop; on a loaded
machine it runs late while a flood goes on. ``TRIM_DELAY`` is raised here so that it never
runs during the test: what stays is what the server does past the hard cap by itself.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from voxhelm.edge import server as edge

HARD = 6
LIMITS = edge.Limits(header_timeout=60.0, body_min_rate=1, max_connections=4, hard_connections=HARD)


class Running:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.port = 0
        self.guarded: edge.GuardedServer | None = None

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/slow":  # a request in flight: its connection is busy
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.setattr(edge, "TRIM_DELAY", 600.0)
    state = Running()
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    state.port = listener.getsockname()[1]
    ready = threading.Event()
    config = edge.build_config(state.app, log_level="warning", lifespan="off", interface="asgi3")
    state.guarded = edge.GuardedServer(config, LIMITS, ready.set)
    thread = threading.Thread(target=state.guarded.run, kwargs={"sockets": [listener]})
    thread.start()
    assert ready.wait(10)
    yield state
    state.release.set()
    state.guarded.should_exit = True
    thread.join(10)
    listener.close()


def half_heads(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(sock)
    time.sleep(0.3)  # the server has taken them all
    return sockets


def get(port: int, path: str = "/") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_past_the_hard_cap_an_idle_head_makes_room_for_a_newcomer(running: Running) -> None:
    held = half_heads(running.port, HARD * 3)
    try:
        for _ in range(5):
            assert get(running.port).startswith(b"HTTP/1.1 200"), "refused past the hard cap"
        assert running.guarded is not None
        assert running.guarded.server_state.evicted >= HARD * 2
        assert running.guarded.server_state.refused_busy == 0
    finally:
        for sock in held:
            sock.close()


def test_past_the_hard_cap_with_every_connection_busy_a_newcomer_gets_503(
    running: Running,
) -> None:
    busy = []
    for _ in range(HARD + 1):
        sock = socket.create_connection(("127.0.0.1", running.port), timeout=5)
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        busy.append(sock)
    time.sleep(0.3)
    try:
        # Read before sending: the answer comes at connect, and a request the server never
        # read would turn its close into a reset that may discard the answer.
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
        assert b"too_many_connections" in answer
    finally:
        running.release.set()
        for sock in busy:
            sock.close()

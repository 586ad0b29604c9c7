"""Slow clients under attack: half-sent request heads and trickled bodies cannot hold the
server, and health answers within a second throughout.

The server runs with a descriptor limit of 1,024 (``prlimit``, as on a default Linux
account), so 1,100 silent connections would use up its descriptors without the cap.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess, start_server
from tests.hardening.conftest import Figures

pytestmark = [pytest.mark.hardening, pytest.mark.slow]

DESCRIPTORS = 1024
SILENT = 1100
HEADER_TIMEOUT = 10.0  # the default VOXHELM_HTTP_HEADER_TIMEOUT_SECONDS
BODY_WINDOW = 10.0  # voxhelm.edge.server.BODY_WINDOW


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("slow-clients")
    wrapper = ["prlimit", f"--nofile={DESCRIPTORS}:{DESCRIPTORS}", "--"]
    server = start_server(root, wrapper=wrapper)
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors() -> Iterator[None]:
    """The attacker (this process) needs more descriptors than the server has."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SILENT + 200:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, SILENT + 200), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def address(server: ServerProcess) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return str(parts.hostname), int(parts.port or 80)


def open_descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


class HealthProbe:
    """``GET /v1/health`` on a fresh connection every 0.2 s; keeps every latency."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {PRODUCER_TOKEN}"}
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = httpx.get(f"{self.server.url}/v1/health", headers=headers, timeout=5)
                if response.status_code != 200:
                    self.failures.append(f"status {response.status_code}")
            except httpx.HTTPError as exc:
                self.failures.append(type(exc).__name__)
            self.latencies.append(time.monotonic() - started)
            time.sleep(0.2)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (EOF or reset), without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_a_thousand_half_sent_heads_cannot_lock_the_server_out(
    server: ServerProcess, figures: Figures
) -> None:
    log_before = len(server.log())
    host, port = address(server)
    sockets: list[socket.socket] = []
    peak_descriptors = 0
    with HealthProbe(server) as probe:
        opened = time.monotonic()
        for _ in range(SILENT):
            with suppress(OSError):  # the server may close a socket before it is written
                sock = socket.create_connection((host, port), timeout=5)
                sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                sockets.append(sock)
        while time.monotonic() - opened < HEADER_TIMEOUT + 3:
            peak_descriptors = max(peak_descriptors, open_descriptors(server.process.pid))
            time.sleep(0.25)
    still_open = [s for s in sockets if not closed_by_server(s)]
    for sock in sockets:
        sock.close()
    log = server.log()[log_before:]
    assert not probe.failures, probe.failures[:10]
    assert max(probe.latencies) < 1.0, max(probe.latencies)
    assert still_open == [], f"{len(still_open)} half-sent heads still open"
    assert peak_descriptors < DESCRIPTORS, peak_descriptors
    assert len(log.splitlines()) < 50, log[-2000:]
    assert "Traceback" not in log
    assert server.process.poll() is None
    figures.add(
        "slow clients: half-sent heads / health probes", f"{SILENT} / {len(probe.latencies)}"
    )
    figures.worst(
        "slow clients: slowest health answer under 1,100 silent sockets (s)", max(probe.latencies)
    )
    figures.add("slow clients: server descriptors peak (limit 1024)", peak_descriptors)
    figures.add("slow clients: log lines written meanwhile", len(log.splitlines()))


def drip(sock: socket.socket, data: bytes, every: float, until: float) -> float | None:
    """Send ``data`` a byte every ``every`` seconds; return when the server closed the
    socket (seconds after the start), or None if it still took bytes at ``until``."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > until:
            return None
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        deadline = time.monotonic() + every
        while time.monotonic() < deadline:
            if closed_by_server(sock):
                return time.monotonic() - started
            sock.setblocking(True)
            time.sleep(0.1)
    return None


@pytest.mark.parametrize(
    ("kind", "head"),
    [
        ("head dripped a byte every second", b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"X" * 60),
        (
            "body dripped a byte every 2 s",
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + PRODUCER_TOKEN.encode() + b"\r\n"
            b"Content-Length: 1000\r\n\r\n" + b" " * 1000,
        ),
        (
            "chunked body dripped a byte every 2 s",
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + PRODUCER_TOKEN.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\n \r\n" * 200,
        ),
    ],
)
def test_a_trickle_is_cut_off(
    server: ServerProcess, figures: Figures, kind: str, head: bytes
) -> None:
    sock = socket.create_connection(address(server), timeout=5)
    try:
        if kind.startswith("head"):
            closed = drip(sock, head, every=1.0, until=HEADER_TIMEOUT + 10)
            limit = HEADER_TIMEOUT + 1.5
        else:
            split = head.index(b"\r\n\r\n") + 4
            sock.sendall(head[:split])
            closed = drip(sock, head[split:], every=2.0, until=2 * BODY_WINDOW + 10)
            limit = 2 * BODY_WINDOW + 1.5
    finally:
        sock.close()
    assert closed is not None, f"{kind}: still open"
    assert closed < limit, (kind, closed)
    figures.worst(f"slow clients: {kind}, closed after (s)", closed)

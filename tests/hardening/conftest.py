"""The hardening suite's server under attack, its hostile neighbours, and the figures.

One ``voxhelm serve`` process for the whole suite, started with ``guard/sitecustomize.py``
loaded: it may connect only to loopback, and its resolver is a fixed table (names that
resolve to private, metadata and rebinding addresses). The hostile origin, the canary and
the stand-in run in the test process. Every figure a test measures goes to ``figures``; the
session prints them at the end (they are the numbers ``docs/reliability.md`` reports).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PRODUCER_TOKEN, WORKER_TOKEN, ServerProcess, start_server
from tests.hardening.hostile import STANDIN_ADDRESS, Origin, StandIn, hostile_routes
from tests.hardening.loadgen import load_clip, start_load_server
from tests.speech import synthesize
from tests.workers.origin import Origin as ClipOrigin
from tests.workers.origin import serve_origin

logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns a failure

GUARD_DIR = Path(__file__).resolve().parent / "guard"
FETCH_TIMEOUT = 3  # seconds, VOXHELM_URL_FETCH_TIMEOUT_SECONDS of the server under attack
WEBHOOK_TIMEOUT = 2.0
DOWNLOAD_CAP = 2 * 1024 * 1024
STAGED_CAP = 2 * 1024 * 1024
SYNC_UPLOAD_CAP = 4 * 1024 * 1024
MAX_AUDIO_SECONDS = 600
WEBHOOK_SECRET = "hardening-webhook-secret"
METRICS_TOKEN = "hardening-metrics-token"
DISABLED_WORKER_TOKEN = "hardening-disabled-worker-token"
ALLOWED_NAMES = (
    "media.example.com",
    "private.test",
    "mixed.test",
    "metadata.test",
    "cgnat.test",
    "azure.test",
    "oracle.test",
    "v6private.test",
    "mapped.test",
    "nat64.test",
    "sixtofour.test",
    "rebind-sync.test",
    "rebind-job.test",
    "rebind-ref.test",
    "hostile.test",
)


def allowlist(names: tuple[str, ...]) -> str:
    """``VOXHELM_ALLOWED_URL_HOSTS`` for ``names`` on any port: the traps sit on loopback
    ports, and the suite tests what their addresses do (``test_ssrf.py`` tests ports)."""
    return ",".join(f"{name}:*" for name in names)


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")
REBIND = {"first": [STANDIN_ADDRESS], "then": ["127.0.0.1"]}
DNS: dict[str, Any] = {
    "media.example.com": ["10.20.30.40"],
    "private.test": ["192.168.7.7"],
    "mixed.test": [STANDIN_ADDRESS, "10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "cgnat.test": ["100.100.100.200"],
    "azure.test": ["168.63.129.16"],
    "oracle.test": ["192.0.0.192"],
    "v6private.test": ["fd00:ec2::254"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "nat64.test": ["64:ff9b::7f00:1"],
    "sixtofour.test": ["2002:7f00:1::"],
    "rebind-sync.test": REBIND,
    "rebind-job.test": REBIND,
    "rebind-ref.test": REBIND,
    "hostile.test": ["127.0.0.1"],
}
"""The fake resolver's table: every allowlisted name but ``hostile.test`` is a trap."""


class Figures:
    """Numbers measured by the suite, printed at the end of the session."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, name: str, value: Any) -> None:
        self.values[name] = value

    def bump(self, name: str, by: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + by

    def worst(self, name: str, value: float) -> None:
        self.values[name] = max(self.values.get(name, 0.0), round(value, 3))


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES.values:
        terminalreporter.section("hardening figures")
        for name, value in sorted(FIGURES.values.items()):
            terminalreporter.write_line(f"{name}: {value}")
        out = os.environ.get("HARDENING_FIGURES_FILE")
        if out:
            Path(out).write_text(json.dumps(FIGURES.values, indent=2, sort_keys=True))


@dataclass
class Target:
    """The server under attack and its neighbours."""

    server: ServerProcess
    origin: Origin  # hostile.test:<port>, trusted plain HTTP on loopback
    canary: Origin  # nothing may ever reach it
    standin: StandIn  # where the guard sends connections to the "public" address
    guard_log: Path

    @property
    def url(self) -> str:
        return self.server.url

    def hostile(self, path: str) -> str:
        return f"http://hostile.test:{self.origin.port}{path}"

    def client(self, token: str | None = PRODUCER_TOKEN, **kwargs: Any) -> httpx.Client:
        return self.server.client(token, **kwargs)

    def guard_events(self, kind: str | None = None) -> list[dict[str, str]]:
        if not self.guard_log.exists():
            return []
        events = [json.loads(line) for line in self.guard_log.read_text().splitlines() if line]
        return [e for e in events if kind is None or e["kind"] == kind]

    def outside_loopback(self) -> list[dict[str, str]]:
        """Connections the guard had to refuse: anything not loopback, not the stand-in."""
        return self.guard_events("blocked")

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the server's own database (read-only) — e.g. to count job rows."""
        path = self.server.var_dir / "db.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, args).fetchall()

    def job_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM voxhelm_jobs_job")[0][0])


# -- the load and soak suites: one clip, served for job submissions, and a loaded server ----


@pytest.fixture(scope="module")
def clip() -> bytes:
    return load_clip()


@pytest.fixture(scope="module")
def clip_origin(clip: bytes) -> Iterator[ClipOrigin]:
    with serve_origin() as served:
        served.add("/clip.wav", "audio/wav", clip)
        yield served


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_load_server(tmp_path_factory.mktemp("load"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def speech_wav() -> bytes:
    return synthesize("Please turn on the kitchen lights.").wav_bytes()


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory, speech_wav: bytes) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("hardening")
    canary = Origin()
    standin = StandIn()
    origin = Origin()
    base = f"http://hostile.test:{origin.port}"
    origin.routes.update(hostile_routes(base, canary.port, DOWNLOAD_CAP, speech_wav))
    guard_log = root / "guard.jsonl"
    hosts = allowlist(ALLOWED_NAMES)
    env = {
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p
        ),
        "HARDENING_GUARD_LOG": str(guard_log),
        "HARDENING_DNS": json.dumps(DNS),
        "HARDENING_STANDIN": f"{STANDIN_ADDRESS}=127.0.0.1:{standin.port}",
        "VOXHELM_ALLOWED_URL_HOSTS": hosts,
        "VOXHELM_TRUSTED_HTTP_HOSTS": "hostile.test",
        "VOXHELM_URL_FETCH_TIMEOUT_SECONDS": str(FETCH_TIMEOUT),
        "VOXHELM_MAX_URL_DOWNLOAD_BYTES": str(DOWNLOAD_CAP),
        "VOXHELM_BATCH_MAX_DOWNLOAD_BYTES": str(DOWNLOAD_CAP),
        "VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES": str(STAGED_CAP),
        "VOXHELM_MAX_UPLOAD_BYTES": str(SYNC_UPLOAD_CAP),
        "VOXHELM_MAX_AUDIO_SECONDS": str(MAX_AUDIO_SECONDS),
        "VOXHELM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "VOXHELM_WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT),
        "VOXHELM_WEBHOOK_MAX_ATTEMPTS": "1",
        "VOXHELM_METRICS_TOKEN": METRICS_TOKEN,
        "VOXHELM_WORKER_TOKENS": f"atlas={WORKER_TOKEN},boreas={DISABLED_WORKER_TOKEN}",
        # A fetch must never go through a proxy: every proxy variable points at the canary.
        **{name: f"http://127.0.0.1:{canary.port}" for name in PROXY_VARIABLES},
    }
    server = start_server(root, env)
    yield Target(server, origin, canary, standin, guard_log)
    server.stop()
    for neighbour in (origin, canary, standin):
        neighbour.stop()

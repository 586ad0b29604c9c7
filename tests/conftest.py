"""Shared fixtures: configuration, API clients, a real server process, real speech."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pgserver import PgServer, start_postgres
from tests.pgserver import available as pg_available
from tests.s3server import S3Server, start_s3
from voxhelm import TELEMETRY_SWITCHES
from voxhelm.config import Config, load_config

pytest_plugins = ["tests.netguard"]

PRODUCER_TOKEN = "test-token"
OTHER_PRODUCER_TOKEN = "other-token"
WORKER_TOKEN = "worker-token"
METRICS_TOKEN = "metrics-token"
BASE_ENV = {
    "DJANGO_SECRET_KEY": "test-only-secret-key",
    "VOXHELM_BEARER_TOKENS": f"archive={PRODUCER_TOKEN},other={OTHER_PRODUCER_TOKEN}",
    "VOXHELM_WORKER_TOKENS": f"atlas={WORKER_TOKEN}",
}


def make_config(tmp_path: Path | None = None, **env: str) -> Config:
    """A Config from the test base environment plus ``env`` (no os.environ involved)."""
    base = dict(BASE_ENV)
    if tmp_path is not None:
        base["VOXHELM_VAR_DIR"] = str(tmp_path / "var")
    base.update(env)
    return load_config(base)


@pytest.fixture
def configure(settings: Any, tmp_path: Path) -> Callable[..., Config]:
    """Swap in a configuration built from the base test environment plus overrides."""

    def apply(**env: str) -> Config:
        config = make_config(tmp_path, **env)
        settings.VOXHELM = config
        return config

    apply()
    return apply


@pytest.fixture
def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {PRODUCER_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A ``voxhelm`` server running as a real process on loopback."""

    url: str
    process: subprocess.Popen[str]
    var_dir: Path
    tmp_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def slot_is_free(self, slot: int = 0) -> bool:
        """Whether lane slot ``slot`` is unlocked (the lock files are plain flocks; one not
        made yet was never taken)."""
        try:
            fd = os.open(self.var_dir / "lane-scheduler" / f"slot-{slot}.lock", os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return True

    def client(self, token: str | None = PRODUCER_TOKEN, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


INHERITED_NOT = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", *TELEMETRY_SWITCHES)
"""Left out of a server's environment: the test process's settings, and the telemetry
switches importing ``voxhelm`` set here (each process must set them itself)."""


def process_env(root: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``voxhelm`` process keeping its state under ``root``."""
    var_dir = root / "var"
    tmp_dir = root / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VOXHELM_") and k not in INHERITED_NOT
    }
    full_env.update(BASE_ENV)
    full_env.update(
        {
            "VOXHELM_VAR_DIR": str(var_dir),
            "TMPDIR": str(tmp_dir),  # so a test can see every temporary file the server leaves
            "PYTHONUNBUFFERED": "1",
        }
    )
    full_env.update(env or {})
    return full_env


def start_server(
    root: Path,
    env: dict[str, str] | None = None,
    command: str = "serve",
    timeout: float = 90,
    wrapper: Sequence[str] = (),
) -> ServerProcess:
    """Start ``voxhelm <command>`` on a free loopback port and wait until health answers.

    ``wrapper`` goes before the command line (e.g. a tracer that runs the server as its child).
    """
    port = free_port()
    var_dir = root / "var"
    tmp_dir = root / "tmp"
    log_path = root / "server.log"
    full_env = process_env(root, env)
    log = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "voxhelm.cli", command, "--port", str(port)],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, var_dir, tmp_dir, log_path)
    deadline = time.monotonic() + timeout
    token = full_env["VOXHELM_BEARER_TOKENS"].split(",")[0].split("=", 1)[1]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            response = httpx.get(
                f"{server.url}/v1/health", headers={"Authorization": f"Bearer {token}"}, timeout=2
            )
            if response.status_code == 200 and response.json()["stt"]["state"] in (
                "ready",
                "unavailable",
            ):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not become ready:\n{server.log()}")


@dataclass
class WorkerProcess:
    """A ``voxhelm worker`` (batch jobs) running as a real process."""

    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash or OOM kill."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(
    root: Path,
    env: dict[str, str] | None = None,
    name: str = "worker",
    timeout: float = 90,
    wrapper: Sequence[str] = (),
) -> WorkerProcess:
    """Start ``voxhelm worker`` with its state under ``root`` and wait until it polls."""
    log_path = root / f"{name}.log"
    log = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "voxhelm.cli", "worker"],
        env=process_env(root, env),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return wait_until_logged(WorkerProcess(process, log_path), "Voxhelm worker", timeout)


def wait_until_logged(worker: WorkerProcess, marker: str, timeout: float) -> WorkerProcess:
    """Return ``worker`` once its log shows ``marker``; stop it and raise if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"{marker!r} process exited early:\n{worker.log()}")
        if marker in worker.log():
            return worker
        time.sleep(0.1)
    worker.stop()
    raise RuntimeError(f"{marker!r} process did not start:\n{worker.log()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real ``voxhelm serve`` for the session: real model, real HTTP on loopback."""
    root = tmp_path_factory.mktemp("server")
    proc = start_server(
        root,
        {
            "VOXHELM_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024),
            "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*,localhost:*,media.example.com",
            "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
            "VOXHELM_METRICS_TOKEN": METRICS_TOKEN,
        },
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """A real PostgreSQL server on loopback for the session (skipped where not installed)."""
    if not pg_available():
        pytest.skip("PostgreSQL is not installed (.ci/run installs the postgresql package)")
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (SeaweedFS) on loopback for the session."""
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()

"""The fault suite's set-ups: a web process with worker processes that can be killed, the
breakpoint files of ``gate/sitecustomize.py``, and what a job left in the database, on disk
and in S3.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerProcess, WorkerProcess, start_worker
from tests.s3server import S3Server
from tests.workers.cluster import object_keys, wait_for

GATE_DIR = Path(__file__).resolve().parent / "gate"
TEMP_PREFIX = ".voxhelm-tmp-"  # voxhelm.storage.filesystem.TEMP_PREFIX
FORMATS = ["text", "json", "vtt", "srt"]
TRANSCRIPTS = ("transcript.txt", "transcript.json", "transcript.vtt", "transcript.srt")
EXPECTED_ARTIFACTS = sorted(("source.wav", *TRANSCRIPTS))
# Steps a worker is killed at: "downloading" is a stalled download from the origin, the
# others are breakpoints of the gate (see gate/sitecustomize.py).
KILL_STEPS = ("downloading", "source", "decoding", "transcribing", "rendering", "rendered")


def gate_env(folder: Path) -> dict[str, str]:
    """Environment of a process that pauses at the breakpoints, with markers in ``folder``."""
    path = os.pathsep.join(p for p in (str(GATE_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "FAULT_GATE_DIR": str(folder)}


@dataclass
class Gate:
    """The marker folder shared with the gated processes."""

    folder: Path

    def reached(self, name: str) -> int | None:
        """The pid of the process paused at ``gate-…`` file ``name`` (stem), or None."""
        marker = self.folder / f"{name}.reached"
        return int(marker.read_text()) if marker.exists() else None

    def wait(self, name: str, timeout: float = 90) -> int:
        return int(wait_for(lambda: self.reached(name), timeout, f"breakpoint {name}", 0.05))

    def release(self, name: str) -> None:
        (self.folder / f"{name}.release").write_text("")


def job_body(url: str) -> dict[str, Any]:
    return {
        "job_type": "transcribe",
        "input": {"kind": "url", "url": url},
        "output": {"formats": FORMATS},
    }


def submit(client: httpx.Client, url: str) -> str:
    response = client.post("/v1/jobs", json=job_body(url))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wait_terminal(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    terminal = ("succeeded", "failed", "canceled")

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return body if body["state"] in terminal else None

    return dict(wait_for(done, timeout, f"job {job_id} to end", 0.2))


@dataclass
class LocalCluster:
    """``voxhelm web`` and ``voxhelm worker`` processes sharing one SQLite database file."""

    root: Path
    web: ServerProcess
    env: dict[str, str]
    gate: Gate
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.web.var_dir / "db.sqlite3"

    @property
    def artifact_root(self) -> Path:
        return self.web.var_dir / "artifacts"

    def start_worker(self) -> WorkerProcess:
        home = self.root / f"worker-{len(self.workers)}"
        home.mkdir()
        env = {**self.env, **gate_env(self.gate.folder), "VOXHELM_VAR_DIR": str(self.web.var_dir)}
        worker = start_worker(home, env, name="worker")
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stop(self) -> None:
        self.stop_workers()
        self.web.stop()

    def attempts(self, job_id: str) -> int:
        sql = "SELECT attempt_count FROM voxhelm_jobs_job WHERE id = ?"
        return int(query(self.database, sql, job_id.replace("-", ""))[0][0])

    def artifact_rows(self, job_id: str) -> list[str]:
        return artifact_rows(self.database, job_id)

    def artifact_files(self, job_id: str) -> list[str]:
        folder = self.artifact_root / "voxhelm" / "jobs" / job_id
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def query(database: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        return db.execute(sql, args).fetchall()


def artifact_rows(database: Path, job_id: str) -> list[str]:
    """Names of the job's artifact rows, sorted (a name twice would show twice)."""
    sql = "SELECT name FROM voxhelm_artifacts_jobartifact WHERE job_id = ? ORDER BY name"
    return [row[0] for row in query(database, sql, job_id.replace("-", ""))]


def temp_leftovers(root: Path) -> list[Path]:
    """In-flight writes of the filesystem store that were never committed or removed."""
    return [p for p in root.rglob(f"{TEMP_PREFIX}*")] if root.exists() else []


def kill_at_each_step(
    steps: tuple[str, ...],
    start: Callable[[], WorkerProcess],
    reached: Callable[[str], int | None],
    timeout: float = 120,
) -> dict[str, float]:
    """Kill the running worker with SIGKILL each time one of ``steps`` is reached, starting
    a fresh one after each kill; returns how long each step took to be reached."""
    current = start()
    pending = list(steps)
    seen: dict[str, float] = {}
    started = time.monotonic()
    while pending:

        def next_step() -> str | None:
            return next((s for s in pending if reached(s) is not None), None)

        step = str(wait_for(next_step, timeout, f"one of {pending} to be reached", 0.05))
        pid = reached(step)
        assert pid in (None, -1, current.process.pid), (step, pid, current.process.pid)
        current.kill()  # SIGKILL: no clean-up, no failure report
        seen[step] = round(time.monotonic() - started, 1)
        pending.remove(step)
        current = start()
    return seen


def s3_keys(s3: S3Server, bucket: str, job_id: str) -> list[str]:
    return object_keys(s3, bucket, f"voxhelm/jobs/{job_id}/")


def restart_s3(stopped: S3Server) -> S3Server:
    """Start ``weed`` again with the same command (same ports, same data folder)."""
    log = stopped.log_path.open("ab")
    process = subprocess.Popen(stopped.process.args, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(process, stopped.endpoint_url, stopped.log_path)

    def answers() -> bool:
        try:
            server.new_bucket()
        except Exception:
            return False
        return True

    wait_for(answers, 60, "the S3 server to answer again", 0.3)
    return server

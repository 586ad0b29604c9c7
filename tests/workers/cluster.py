"""A multi-host set-up on one machine: ``voxhelm web`` in remote_pull mode, real
``voxhelm-remote-worker`` processes, a real S3 server (and optionally PostgreSQL).

Each worker keeps its state (lane locks, temporary files) in a folder of its own, as it
would on its own host. Used by the real-process tests and by ``bench/remote_workers.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import (
    ServerProcess,
    WorkerProcess,
    process_env,
    start_server,
    wait_until_logged,
)
from tests.s3server import S3Server

WORKER_IDS = ("atlas", "boreas")


def worker_token(worker_id: str) -> str:
    return f"worker-{worker_id}-token"


def worker_tokens(ids: tuple[str, ...] | list[str]) -> str:
    return ",".join(f"{worker_id}={worker_token(worker_id)}" for worker_id in ids)


def cluster_env(
    s3: S3Server, bucket: str, *, lease_seconds: int = 5, ids: tuple[str, ...] = WORKER_IDS
) -> dict[str, str]:
    """Settings every process of the set-up shares (server and workers)."""
    return {
        **s3.env(bucket),
        "VOXHELM_TRANSCRIPTION_EXECUTION_MODE": "remote_pull",
        "VOXHELM_WORKER_TOKENS": worker_tokens(ids),
        "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
        "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
        "VOXHELM_REMOTE_WORKER_LEASE_SECONDS": str(lease_seconds),
        "VOXHELM_REMOTE_WORKER_POLL_SECONDS": "1",
        "VOXHELM_JOB_SWEEP_SECONDS": "0.5",
        "VOXHELM_DIARIZATION_BACKEND": "none",
    }


def start_web(root: Path, env: dict[str, str]) -> ServerProcess:
    return start_server(root, env, command="web")


def voxhelm(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``voxhelm`` command with the state (database) kept under ``root``."""
    return subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", *args],
        env=process_env(root, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def worker_binary() -> str:
    return str(Path(sys.executable).parent / "voxhelm-remote-worker")


def start_remote_worker(
    root: Path,
    worker_id: str,
    server: ServerProcess,
    env: dict[str, str],
    timeout: float = 60,
    wrapper: Sequence[str] = (),
) -> WorkerProcess:
    """Start ``voxhelm-remote-worker`` (the installed console script) for ``worker_id``."""
    home = root / worker_id
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"worker-{time.monotonic_ns()}.log"
    worker_env = process_env(
        home,
        {
            **env,
            "VOXHELM_WORKER_ID": worker_id,
            "VOXHELM_WORKER_BASE_URL": server.url,
        },
    )
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [*wrapper, worker_binary(), "--heartbeat-interval-seconds", "1", "--log-level", "INFO"],
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return wait_until_logged(WorkerProcess(process, log_path), "Voxhelm remote worker", timeout)


def claimed_attempts(workers: list[WorkerProcess], job_id: str) -> dict[int, WorkerProcess]:
    """Which worker process claimed which attempt of ``job_id`` (from their logs)."""
    found: dict[int, WorkerProcess] = {}
    pattern = re.compile(rf"job {re.escape(job_id)}: attempt (\d+) claimed")
    for worker in workers:
        for match in pattern.finditer(worker.log()):
            found[int(match.group(1))] = worker
    return found


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for_job(
    client: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return body if body["state"] in states else None

    return dict(wait_for(done, timeout, f"job {job_id} to reach {states}"))


def object_keys(s3: S3Server, bucket: str, prefix: str) -> list[str]:
    client: Any = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@dataclass
class Submitter:
    """Submits transcription jobs as the producer."""

    client: httpx.Client

    def url_job(self, url: str, **fields: Any) -> str:
        body = {"job_type": "transcribe", "input": {"kind": "url", "url": url}, **fields}
        response = self.client.post("/v1/jobs", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def upload_job(self, data: bytes, filename: str = "speech.wav", **fields: Any) -> str:
        staged = self.client.post("/v1/uploads", files={"file": (filename, data, "audio/wav")})
        assert staged.status_code == 201, staged.text
        body = {
            "job_type": "transcribe",
            "input": {"kind": "upload", "upload_id": staged.json()["id"]},
            **fields,
        }
        response = self.client.post("/v1/jobs", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

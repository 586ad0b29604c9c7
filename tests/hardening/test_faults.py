"""Faults, for real: workers killed with SIGKILL at each step of a job (local and remote),
the S3 server killed mid-upload, the database held locked, and a full artifact disk.

Workers pause at a step through ``gate/sitecustomize.py`` (a breakpoint between two real
steps of the real pipeline) so that each kill lands where it is meant to; the download step
is a real stalled download from a loopback origin instead.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, WorkerProcess, start_server
from tests.hardening.conftest import Figures
from tests.hardening.disks import fill, small_disk
from tests.hardening.faults import (
    EXPECTED_ARTIFACTS,
    KILL_STEPS,
    TRANSCRIPTS,
    Gate,
    LocalCluster,
    artifact_rows,
    gate_env,
    kill_at_each_step,
    restart_s3,
    s3_keys,
    submit,
    temp_leftovers,
    wait_terminal,
)
from tests.s3server import S3Server, start_s3
from tests.speech import synthesize, word_error_rate
from tests.workers.cluster import WORKER_IDS, cluster_env, start_remote_worker, start_web
from tests.workers.origin import Origin, serve_origin

pytestmark = [pytest.mark.hardening, pytest.mark.slow]

SENTENCE = "The lighthouse keeper counted seven ships before the storm arrived."
LOCAL_ENV = {
    "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
    "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
    "VOXHELM_DIARIZATION_BACKEND": "none",
    "VOXHELM_JOB_HEARTBEAT_SECONDS": "0.5",
    # Above the database test's 3 s lock (beats cannot be written while it is held), low
    # enough that a killed worker's job is re-queued quickly.
    "VOXHELM_JOB_STALE_SECONDS": "5",
    "VOXHELM_JOB_SWEEP_SECONDS": "0.5",
}
DB_LOCK_SECONDS = 3.0


@pytest.fixture(scope="module")
def speech() -> bytes:
    return synthesize(SENTENCE).wav_bytes()


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with serve_origin() as served:
        yield served


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("faults-local")
    gate = Gate(root / "gate")
    gate.folder.mkdir()
    web = start_server(root / "web", LOCAL_ENV, command="web")
    cluster = LocalCluster(root, web, LOCAL_ENV, gate)
    yield cluster
    cluster.stop()


def check_succeeded_once(client: httpx.Client, job_id: str) -> dict[str, Any]:
    body = wait_terminal(client, job_id, timeout=180)
    assert body["state"] == "succeeded", body
    assert word_error_rate(SENTENCE, body["result"]["text"]) < 0.25
    assert sorted(body["result"]["artifacts"]) == ["json", "srt", "text", "vtt"]
    for link in body["result"]["artifacts"].values():
        download = client.get(link)  # read to the end: verified against size and SHA-256
        assert download.status_code == 200, download.text
        assert download.content
    return body


def test_sigkill_at_each_step_local(
    local: LocalCluster, origin: Origin, speech: bytes, figures: Figures
) -> None:
    """``voxhelm worker`` killed at each step; fresh workers finish every job exactly once."""
    client = local.web.client()
    origin.stall_seconds = 30
    jobs: dict[str, str] = {}
    for step in KILL_STEPS:
        path = f"/local/gate-{step}-local.wav"
        url = origin.add(path, "audio/wav", speech, stalls=1 if step == "downloading" else 0)
        jobs[step] = submit(client, url)

    def reached(step: str) -> int | None:
        if step == "downloading":
            return -1 if origin.count("/local/gate-downloading-local.wav") else None
        return local.gate.reached(f"gate-{step}-local")

    try:
        kill_at_each_step(KILL_STEPS, local.start_worker, reached)
        for step, job_id in jobs.items():
            check_succeeded_once(client, job_id)
            # Exactly the second attempt won; each artifact exists once, as a row and a file.
            assert local.attempts(job_id) == 2, step
            assert local.artifact_rows(job_id) == EXPECTED_ARTIFACTS, step
            assert local.artifact_files(job_id) == EXPECTED_ARTIFACTS, step
        assert temp_leftovers(local.artifact_root) == []
    finally:
        local.stop_workers()
    figures.add(
        "faults: local SIGKILL steps (jobs lost / duplicate artifacts)", f"{len(jobs)} (0/0)"
    )


@pytest.fixture(scope="module")
def remote(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[tuple[ServerProcess, dict[str, str], str]]:
    bucket = s3_server.new_bucket()
    env = cluster_env(s3_server, bucket, lease_seconds=3)
    server = start_web(tmp_path_factory.mktemp("faults-remote"), env)
    yield server, env, bucket
    server.stop()


def test_sigkill_at_each_step_remote(
    remote: tuple[ServerProcess, dict[str, str], str],
    origin: Origin,
    speech: bytes,
    s3_server: S3Server,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """``voxhelm-remote-worker`` killed at each step: the lease runs out, another worker
    claims the job, and only the final attempt's artifacts remain."""
    server, env, bucket = remote
    gate = Gate(tmp_path / "gate")
    gate.folder.mkdir()
    client = server.client()
    origin.stall_seconds = 30
    jobs: dict[str, str] = {}
    for step in KILL_STEPS:
        path = f"/remote/gate-{step}-remote.wav"
        url = origin.add(path, "audio/wav", speech, stalls=1 if step == "downloading" else 0)
        jobs[step] = submit(client, url)
    workers: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker_id = WORKER_IDS[len(workers) % len(WORKER_IDS)]
        worker = start_remote_worker(tmp_path, worker_id, server, {**env, **gate_env(gate.folder)})
        workers.append(worker)
        return worker

    def reached(step: str) -> int | None:
        if step == "downloading":
            return -1 if origin.count("/remote/gate-downloading-remote.wav") else None
        return gate.reached(f"gate-{step}-remote")

    try:
        kill_at_each_step(KILL_STEPS, start, reached)
        for step, job_id in jobs.items():
            body = check_succeeded_once(client, job_id)
            attempt = body["result"]["metadata"]["attempt"]
            assert attempt == 2, step
            keys = s3_keys(s3_server, bucket, job_id)
            prefix = f"voxhelm/jobs/{job_id}/attempt-{attempt}/"
            assert keys == [prefix + name for name in EXPECTED_ARTIFACTS], (step, keys)
            database = server.var_dir / "db.sqlite3"
            assert artifact_rows(database, job_id) == EXPECTED_ARTIFACTS, step
    finally:
        for worker in workers:
            worker.stop()
    figures.add(
        "faults: remote SIGKILL steps (jobs lost / duplicate artifacts)", f"{len(jobs)} (0/0)"
    )


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_s3_killed_mid_upload(
    mode: str, tmp_path: Path, origin: Origin, speech: bytes, figures: Figures
) -> None:
    """The S3 server dies between two uploads of a job: the job fails with a code or is
    retried; it never succeeds without its artifacts."""
    s3 = start_s3(tmp_path / "s3")
    bucket = s3.new_bucket()
    gate = Gate(tmp_path / "gate")
    gate.folder.mkdir()
    env = {**cluster_env(s3, bucket, lease_seconds=3), **gate_env(gate.folder)}
    if mode == "local":
        env["VOXHELM_TRANSCRIPTION_EXECUTION_MODE"] = "django_tasks"
    server = start_server(tmp_path / "server", env, command="serve" if mode == "local" else "web")
    worker: WorkerProcess | None = None
    try:
        if mode == "remote":
            worker = start_remote_worker(tmp_path, "atlas", server, env)
        client = server.client()
        url = origin.add(f"/s3/gate-prerender-{mode}.wav", "audio/wav", speech)
        job_id = submit(client, url)
        gate.wait(f"gate-prerender-{mode}")  # the source is stored, no transcript yet
        s3.process.kill()
        s3.process.wait()
        killed = time.monotonic()
        gate.release(f"gate-prerender-{mode}")
        if worker is not None:
            # Attempt 1 fails, retryable. Its worker stops before it could claim attempt 2
            # (which would fail the same way); S3 comes back; another worker claims it.
            wait_for_log(worker, "reported retryable failure", 60)
            worker.stop()
            s3 = restart_s3(s3)
            worker = start_remote_worker(tmp_path, "boreas", server, env)
        body = wait_terminal(client, job_id, timeout=120)
        elapsed = round(time.monotonic() - killed, 1)
        if mode == "remote" and body["state"] == "succeeded":
            # The first worker may have burnt a further attempt before it stopped.
            attempt = body["result"]["metadata"]["attempt"]
            assert attempt >= 2
            for link in body["result"]["artifacts"].values():
                assert client.get(link).status_code == 200
            prefix = f"voxhelm/jobs/{job_id}/attempt-{attempt}/"
            assert s3_keys(s3, bucket, job_id) == [prefix + n for n in EXPECTED_ARTIFACTS]
            outcome = f"retried (worker_io_error), succeeded on attempt {attempt}"
        elif mode == "remote":  # every attempt was used up while S3 was down
            assert body["state"] == "failed", body
            assert body["error"]["code"] == "worker_io_error", body
            assert not body.get("result"), body
            outcome = "every attempt failed with worker_io_error"
        else:
            # The embedded worker has no other store to go to: the job fails, with a code.
            assert body["state"] == "failed", body
            assert body["error"]["code"] == "worker_io_error", body  # was internal_error
            assert not body.get("result"), body
            outcome = f"failed with {body['error']['code']}"
        # Nothing about the store (its address, the exception) reaches the client.
        assert s3.endpoint_url.split("//")[1] not in str(body)
        figures.add(f"faults: S3 killed mid-upload, {mode}", f"{outcome} ({elapsed} s)")
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        s3.stop()


def wait_for_log(worker: WorkerProcess, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.1)


def test_database_locked_while_jobs_run_and_arrive(
    local: LocalCluster, origin: Origin, speech: bytes, figures: Figures
) -> None:
    """Another connection holds SQLite's write lock for a few seconds while a job reports
    progress and stores artifacts, an idle worker polls for tasks and a new job is
    submitted: all wait, and both jobs succeed."""
    worker = local.start_worker()
    client = local.web.client()
    url = origin.add("/db/gate-transcribing-db.wav", "audio/wav", speech)
    running = submit(client, url)
    local.gate.wait("gate-transcribing-db")
    idle = local.start_worker()  # polls for tasks, each poll a write transaction
    later: dict[str, Any] = {}
    db = sqlite3.connect(local.database, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")  # the write lock: every other writer must wait
        locked = time.monotonic()
        local.gate.release("gate-transcribing-db")  # the worker writes progress, artifacts

        def submit_later() -> None:
            started = time.monotonic()
            plain = origin.add("/db/plain.wav", "audio/wav", speech)
            response = local.web.client().post(
                "/v1/jobs",
                json={"job_type": "transcribe", "input": {"kind": "url", "url": plain}},
            )
            later.update(response=response, seconds=time.monotonic() - started)

        thread = threading.Thread(target=submit_later)
        thread.start()
        time.sleep(DB_LOCK_SECONDS)
        assert client.get(f"/v1/jobs/{running}").json()["state"] == "running"
        assert "response" not in later  # still waiting for the lock
    finally:
        db.execute("ROLLBACK")
        held = time.monotonic() - locked
        db.close()
    thread.join(60)
    assert later["response"].status_code == 201, later["response"].text
    assert later["seconds"] >= DB_LOCK_SECONDS - 0.5
    check_succeeded_once(client, running)
    assert local.attempts(running) == 1  # waited, not retried by the sweeper
    second = wait_terminal(client, later["response"].json()["id"], timeout=120)
    assert second["state"] == "succeeded", second
    for log in (worker.log(), idle.log(), local.web.log()):
        assert "database is locked" not in log
        assert "Traceback" not in log
    assert idle.process.poll() is None
    worker.stop()
    idle.stop()
    figures.add(
        "faults: database write lock held / submission waited (s), jobs failed",
        f"{held:.1f} / {later['seconds']:.1f}, 0",
    )


def test_full_artifact_disk(
    tmp_path: Path, origin: Origin, speech: bytes, figures: Figures
) -> None:
    """The artifact root fills up while a job stores its transcripts: the job fails with a
    code, and no partial object or temporary file is left."""
    root = tmp_path / "artifacts"
    with small_disk(root, "2m") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs needs root (the CI runs as root)")
        gate = Gate(tmp_path / "gate")
        gate.folder.mkdir()
        env = {**LOCAL_ENV, **gate_env(gate.folder), "VOXHELM_ARTIFACT_ROOT": str(root)}
        server = start_server(tmp_path / "server", env)
        try:
            client = server.client()
            job_id = submit(
                client, origin.add("/disk/gate-prerender-disk.wav", "audio/wav", speech)
            )
            gate.wait("gate-prerender-disk")
            fill(root)
            gate.release("gate-prerender-disk")
            body = wait_terminal(client, job_id, timeout=60)
            assert body["state"] == "failed", body
            code = body["error"]["code"]
            assert code == "worker_io_error", body  # was internal_error
            assert str(root) not in body["error"]["message"]
            folder = root / "voxhelm" / "jobs" / job_id
            assert sorted(p.name for p in folder.iterdir()) == ["source.wav"]
            assert (folder / "source.wav").read_bytes() == speech
            assert temp_leftovers(root) == []
            assert not any((folder / name).exists() for name in TRANSCRIPTS)
            # Space again: the next job succeeds.
            (root / "filler").unlink()
            again = submit(client, origin.add("/disk/after.wav", "audio/wav", speech))
            assert wait_terminal(client, again, timeout=120)["state"] == "succeeded"
        finally:
            server.stop()
    figures.add("faults: full artifact disk", f"failed with {code}, 0 partial/temp files")

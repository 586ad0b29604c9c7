"""Temp media left behind by a crash: ``voxhelm serve``, ``voxhelm worker`` and
``voxhelm-remote-worker`` killed with SIGKILL while a job from a staged upload transcribes.

The attempt's work folder in the temp dir holds a full copy of the input then. The process
that starts next on the same temp dir (the restarted one, a sibling worker, the Wyoming
server) removes the dead folder, the retry succeeds, nothing of either attempt is left - and
a folder whose owner is alive (a worker paused mid-job beside them) is never touched.

Jobs pause at the transcribing step through the fault suite's gate (``gate/sitecustomize.py``,
for media named ``gate-<step>-...``), so each kill lands while the copy is on disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from django.conf import settings

from tests.conftest import ServerProcess, WorkerProcess, start_server
from tests.hardening.conftest import Figures
from tests.hardening.faults import Gate, LocalCluster, gate_env, query, wait_terminal
from tests.s3server import S3Server
from tests.speech import Speech, passage, synthesize, word_error_rate
from tests.workers.cluster import Submitter, cluster_env, start_remote_worker, start_web, wait_for
from tests.wyoming_server.conftest import start_wyoming

pytestmark = [pytest.mark.hardening, pytest.mark.slow]

SENTENCE = "The lighthouse keeper counted seven ships before the storm arrived."
ENV = {
    "VOXHELM_DIARIZATION_BACKEND": "none",
    "VOXHELM_JOB_HEARTBEAT_SECONDS": "0.5",
    "VOXHELM_JOB_STALE_SECONDS": "3",  # a killed worker's job is re-queued quickly
    "VOXHELM_JOB_SWEEP_SECONDS": "0.5",
}
SWEEP_LINE = re.compile(
    r"removed (\d+) work folders? of dead processes \((\d+) bytes\) in ([\d.]+) s .*\(at start\)"
)
# onnxruntime (Piper, the VAD) keeps a 51-byte session id in the temp dir, on purpose.
NOT_OURS = {".ses"}


@pytest.fixture(scope="module")
def speech() -> bytes:
    return synthesize(SENTENCE).wav_bytes()


def work_folders(tmp: Path) -> dict[str, int]:
    """Everything in the temp dir ``tmp`` (its own files and Django's too), each top-level
    entry with the bytes it holds."""
    found: dict[str, int] = {}
    for entry in tmp.iterdir():
        if entry.name in NOT_OURS:
            continue
        total = 0
        for parent, _, files in os.walk(entry):  # os.walk skips what vanishes meanwhile
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += (Path(parent) / name).stat().st_size
        with contextlib.suppress(FileNotFoundError):
            total += entry.stat().st_size if entry.is_file() else 0
        found[entry.name] = total
    return found


def input_copies(tmp: Path, speech: bytes) -> dict[str, int]:
    """The work folders holding a full copy of the upload (the issue: ``upload.wav``)."""
    copies = {
        folder.parent.name: len(speech)
        for folder in tmp.glob("voxhelm-*/upload.wav")
        if folder.read_bytes() == speech
    }
    assert copies, f"no copy of the input in {sorted(work_folders(tmp))}"
    return copies


def sweep_seconds(log: str) -> float:
    """How long the sweep at start took, from the process's log (logged when it removed
    something)."""
    found = SWEEP_LINE.findall(log)
    assert found, f"no sweep logged:\n{log[-3000:]}"
    return float(found[-1][2])


def wait_clean(tmp: Path) -> None:
    """The last attempt's own folder goes once the attempt returns (just after its state)."""
    wait_for(lambda: not work_folders(tmp), 30, f"nothing left in {tmp}", 0.1)


def check_succeeded(client: httpx.Client, job_id: str) -> None:
    body = wait_terminal(client, job_id, timeout=120)
    assert body["state"] == "succeeded", body
    assert word_error_rate(SENTENCE, body["result"]["text"]) < 0.25


def attempts(database: Path, job_id: str) -> int:
    sql = "SELECT attempt_count FROM voxhelm_jobs_job WHERE id = ?"
    return int(query(database, sql, job_id.replace("-", ""))[0][0])


def kill(process: ServerProcess | WorkerProcess) -> None:
    process.process.kill()  # SIGKILL: no clean-up at all, as in a crash or an OOM kill
    process.process.wait()


@pytest.fixture(scope="module")
def large_upload() -> bytes:
    """Speech above Django's in-memory limit (2.5 MB), so a sync request spools it to disk."""
    once = passage()
    wav = Speech(once.text, np.concatenate([once.samples] * 7), once.sample_rate).wav_bytes()
    assert len(wav) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    return wav


def post_sync(server: ServerProcess, wav: bytes) -> threading.Thread:
    """A sync transcription of ``wav`` on a thread (the server dies before it answers)."""

    def post() -> None:
        with contextlib.suppress(httpx.HTTPError), server.client() as client:
            files = {"file": ("long.wav", wav, "audio/wav")}
            client.post("/v1/audio/transcriptions", data={"model": "whisper-1"}, files=files)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def spooled(tmp: Path, wav: bytes, job_folder: str) -> list[str]:
    """Entries of ``tmp`` holding the sync request's whole upload (not the job's copy)."""
    return [
        name for name, size in work_folders(tmp).items() if name != job_folder and size >= len(wav)
    ]


def test_a_restarted_serve_removes_what_the_killed_one_left(
    tmp_path: Path, speech: bytes, large_upload: bytes, figures: Figures
) -> None:
    """``voxhelm serve`` killed while a job from a staged upload transcribes and a sync
    request's upload is spooled to disk; started again on the same temp and var dirs."""
    gate = Gate(tmp_path / "gate")
    gate.folder.mkdir()
    env = {**ENV, **gate_env(gate.folder)}
    root = tmp_path / "serve"
    server = start_server(root, env)
    try:
        job_id = Submitter(server.client()).upload_job(speech, "gate-transcribing-serve.wav")
        gate.wait("gate-transcribing-serve")
        (job_folder,) = input_copies(server.tmp_dir, speech)
        request = post_sync(server, large_upload)
        wait_for(lambda: spooled(server.tmp_dir, large_upload, job_folder), 60, "the spool")
        kill(server)
        request.join(30)
        left = work_folders(server.tmp_dir)
        server = start_server(root, env)
        survived = set(left) & set(work_folders(server.tmp_dir))
        assert not survived, f"left by the killed serve and still there: {sorted(survived)}"
        seconds = sweep_seconds(server.log())
        check_succeeded(server.client(), job_id)
        assert attempts(server.var_dir / "db.sqlite3", job_id) == 2
        wait_clean(server.tmp_dir)
    finally:
        server.stop()
    figures.add(
        "crash leftovers: serve killed mid-job and mid-request, bytes in temp dir after the "
        "kill / restart",
        f"{sum(left.values())} / 0",
    )
    figures.add("crash leftovers: sweep at start of serve (s)", seconds)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalCluster]:
    """``voxhelm web`` and workers (started by the test) sharing one temp dir."""
    gate = Gate(tmp_path / "gate")
    gate.folder.mkdir()
    shared = tmp_path / "shared-tmp"
    shared.mkdir()  # a TMPDIR that does not exist would make each process use /tmp
    env = {**ENV, "TMPDIR": str(shared)}
    web = start_server(tmp_path / "web", env, command="web")
    cluster = LocalCluster(tmp_path, web, env, gate)
    yield cluster
    cluster.stop()


def test_a_worker_beside_web_removes_dead_folders_only(
    local: LocalCluster, tmp_path: Path, speech: bytes, figures: Figures
) -> None:
    """Worker A dies mid-job while worker B is paused mid-job: worker C starts and runs A's
    retry, and B's folder is untouched; then B dies, ``voxhelm-wyoming-stt`` starts on the
    same temp dir and removes B's folder, and worker D runs B's retry."""
    tmp = Path(local.env["TMPDIR"])
    submitter = Submitter(local.web.client())
    first = local.start_worker()
    job_a = submitter.upload_job(speech, "gate-transcribing-a.wav")
    local.gate.wait("gate-transcribing-a")
    dead = set(input_copies(tmp, speech))
    second = local.start_worker()
    job_b = submitter.upload_job(speech, "gate-transcribing-b.wav")
    local.gate.wait("gate-transcribing-b")
    live = set(input_copies(tmp, speech)) - dead
    assert len(dead) == len(live) == 1
    kill(first)
    left = sum(work_folders(tmp).values())
    local.start_worker()  # C: sweeps at start, then runs A's retry (sweeping again first)
    check_succeeded(local.web.client(), job_a)
    assert attempts(local.database, job_a) == 2
    folders = work_folders(tmp)
    assert set(folders) == live, f"only the paused worker's folder may remain: {folders}"
    assert (tmp / live.pop() / "upload.wav").read_bytes() == speech  # untouched, whole
    worker_seconds = sweep_seconds(local.workers[2].log())
    local.workers[2].stop()
    kill(second)
    wyoming = start_wyoming(tmp_path / "wyoming", {"TMPDIR": str(tmp)})
    try:
        assert work_folders(tmp) == {}, "the Wyoming server left a dead folder"
        wyoming_seconds = sweep_seconds(wyoming.log())
    finally:
        wyoming.stop()
    local.start_worker()  # D: runs B's retry
    check_succeeded(local.web.client(), job_b)
    assert attempts(local.database, job_b) == 2
    wait_clean(tmp)
    figures.add(
        "crash leftovers: worker killed mid-job beside web, bytes in temp dir after the kill "
        "(dead + live) / after the next start (live only)",
        f"{left} / {len(speech)}",
    )
    figures.add("crash leftovers: live folders removed by a starting process", 0)
    figures.add(
        "crash leftovers: sweep at start of worker / wyoming (s)",
        f"{worker_seconds} / {wyoming_seconds}",
    )


def test_a_restarted_remote_worker_removes_the_killed_attempts_copy(
    tmp_path: Path, speech: bytes, s3_server: S3Server, figures: Figures
) -> None:
    """``voxhelm-remote-worker`` killed mid-job; it starts again on the same temp dir, and
    claims the job once the lease ran out."""
    gate = Gate(tmp_path / "gate")
    gate.folder.mkdir()
    env = cluster_env(s3_server, s3_server.new_bucket(), lease_seconds=3)
    server = start_web(tmp_path / "web", env)
    worker_env = {**env, **gate_env(gate.folder)}
    worker = start_remote_worker(tmp_path, "atlas", server, worker_env)
    tmp = tmp_path / "atlas" / "tmp"
    try:
        job_id = Submitter(server.client()).upload_job(speech, "gate-transcribing-remote.wav")
        gate.wait("gate-transcribing-remote")
        kill(worker)
        left = sum(work_folders(tmp).values())
        dead = input_copies(tmp, speech)
        worker = start_remote_worker(tmp_path, "atlas", server, worker_env)
        assert not set(dead) & set(work_folders(tmp)), "the dead copy survived"
        seconds = sweep_seconds(worker.log())
        body = wait_terminal(server.client(), job_id, timeout=120)
        assert body["state"] == "succeeded", body
        assert body["result"]["metadata"]["attempt"] == 2
        wait_clean(tmp)
    finally:
        worker.stop()
        server.stop()
    figures.add(
        "crash leftovers: remote worker killed mid-job, bytes in temp dir after the kill / restart",
        f"{left} / 0",
    )
    figures.add("crash leftovers: sweep at start of remote worker (s)", seconds)

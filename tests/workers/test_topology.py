"""The documented multi-host set-up runs every job type and every sweep: ``voxhelm web``
alone on the server (no local worker), one ``voxhelm-remote-worker``, a real S3 server.

A synthesis job is run by the remote worker (speech heard back by the bundled
faster-whisper model) and its callback is sent by the web process; an expired staged upload
is deleted by the web process's own retention sweep, with nothing else touching it; and
``voxhelm check`` warns while no process could run a job type.
"""

from __future__ import annotations

import http.server
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess, WorkerProcess
from tests.loopback import ThreadedServer
from tests.media import speech_in
from tests.s3server import S3Server
from tests.speech import SENTENCES, synthesize, word_error_rate
from tests.tts.conftest import listen
from tests.workers.cluster import (
    cluster_env,
    object_keys,
    start_remote_worker,
    start_web,
    voxhelm,
    wait_for,
    wait_for_job,
)
from voxhelm.audio import decode

pytestmark = pytest.mark.slow

TEXT = " ".join(SENTENCES[1:3])
RETENTION_SECONDS = 2


@pytest.fixture(scope="module")
def web(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[tuple[ServerProcess, dict[str, str], str]]:
    bucket = s3_server.new_bucket()
    env = {
        **cluster_env(s3_server, bucket, lease_seconds=30, ids=("atlas",)),
        "VOXHELM_STAGED_INPUT_RETENTION_SECONDS": str(RETENTION_SECONDS),
        "VOXHELM_WEBHOOK_SECRET": "topology-webhook-secret",
    }
    server = start_web(tmp_path_factory.mktemp("topology-web"), env)
    yield server, env, bucket
    server.stop()


@pytest.fixture
def callbacks() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A callback receiver on loopback: its URL and the job bodies it was sent."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadedServer(Handler)
    port = server.start()
    yield f"http://127.0.0.1:{port}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def remote_worker(
    tmp_path: Path, web: tuple[ServerProcess, dict[str, str], str]
) -> Iterator[WorkerProcess]:
    server, env, _bucket = web
    worker = start_remote_worker(tmp_path, "atlas", server, env)
    yield worker
    worker.stop()


def test_voxhelm_check_warns_while_no_process_runs_a_job_type(
    tmp_path: Path, web: tuple[ServerProcess, dict[str, str], str], remote_worker: WorkerProcess
) -> None:
    server, env, _bucket = web
    # A server of `voxhelm web` only, before any remote worker came: nothing runs any job.
    (tmp_path / "var").mkdir()
    assert voxhelm(tmp_path, env, "manage", "migrate", "-v", "0").returncode == 0
    alone = voxhelm(tmp_path, env, "check")
    assert alone.returncode == 0, alone.stderr  # a warning, not an error
    assert alone.stderr.count("voxhelm.W005") == 2, alone.stderr
    assert "runs transcribe jobs" in alone.stderr and "runs synthesize jobs" in alone.stderr
    # The set-up under test: its remote worker beats and advertises both job types.
    wait_for(lambda: "Voxhelm remote worker" in remote_worker.log(), 30, "the worker")
    served = voxhelm(server.var_dir.parent, env, "check")
    assert served.returncode == 0, served.stderr
    assert "voxhelm.W005" not in served.stderr, served.stderr


def test_a_remote_worker_runs_synthesis_jobs(
    web: tuple[ServerProcess, dict[str, str], str],
    remote_worker: WorkerProcess,
    s3_server: S3Server,
    callbacks: tuple[str, list[dict[str, Any]]],
) -> None:
    server, _env, bucket = web
    callback_url, received = callbacks
    with server.client() as client:
        response = client.post(
            "/v1/jobs",
            json={
                "job_type": "synthesize",
                "input": {"kind": "text", "text": TEXT},
                "output": {"formats": ["flac", "wav"]},
                "callback_url": callback_url,
            },
        )
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        body = wait_for_job(client, job_id, ("succeeded", "failed"), timeout=120)
        assert body["state"] == "succeeded", body
        metadata = body["result"]["metadata"]
        assert metadata["execution_mode"] == "remote_pull"
        assert metadata["worker_id"] == "atlas"
        assert (metadata["backend"], metadata["model"]) == ("piper", "piper")
        assert metadata["voice"]
        assert metadata["duration_seconds"] > 1
        flac = client.get(body["result"]["artifacts"]["flac"])
        assert flac.headers["content-type"] == "audio/flac"
    heard = listen(decode(io.BytesIO(flac.content)))
    assert word_error_rate(TEXT, heard) <= 0.15, heard
    assert f"job {job_id}: attempt 1 claimed" in remote_worker.log()
    assert object_keys(s3_server, bucket, f"voxhelm/jobs/{job_id}/") == [
        f"voxhelm/jobs/{job_id}/attempt-1/speech.{fmt}" for fmt in ("flac", "wav")
    ]
    # No local worker runs here: the web process's own dispatcher sends the callback.
    wait_for(lambda: received, 15, "the job's callback")
    assert [(body["id"], body["state"]) for body in received] == [(job_id, "succeeded")]


def test_the_web_process_deletes_expired_staged_uploads(
    web: tuple[ServerProcess, dict[str, str], str], s3_server: S3Server
) -> None:
    server, _env, bucket = web
    with server.client() as client:
        staged = client.post(
            "/v1/uploads",
            files={"file": ("forgotten.wav", speech_in("wav", synthesize(TEXT)), "audio/wav")},
        )
        assert staged.status_code == 201, staged.text
        upload_id = staged.json()["id"]
        prefix = f"voxhelm/staged-inputs/{upload_id}/"
        assert object_keys(s3_server, bucket, prefix)
        # Nobody submits, stages or claims anything meanwhile: only a sweep can delete it.
        wait_for(
            lambda: not object_keys(s3_server, bucket, prefix),
            RETENTION_SECONDS + 20,
            "the expired upload's object to be deleted",
        )
        job = client.post(
            "/v1/jobs",
            json={"job_type": "transcribe", "input": {"kind": "upload", "upload_id": upload_id}},
        )
    assert job.status_code == 400, job.text
    assert job.json()["error"]["message"] == "Unknown input.upload_id."

"""The README's stage-then-submit flow on a real ``voxhelm serve``: with the filesystem store
(the session server) and with a real S3 server; and ``voxhelm check`` against S3."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import webvtt

from tests.conftest import ServerProcess, process_env, start_server
from tests.media import speech_in
from tests.s3server import S3Server
from tests.speech import passage, word_error_rate

pytestmark = pytest.mark.slow

S3_LIMIT_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def s3_served(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[ServerProcess]:
    """``voxhelm serve`` whose artifacts and staged uploads live in S3 (2 MiB staging cap)."""
    env = s3_server.env(s3_server.new_bucket())
    env["VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES"] = str(S3_LIMIT_BYTES)
    proc = start_server(tmp_path_factory.mktemp("s3-serve"), env)
    yield proc
    proc.stop()


@pytest.fixture(params=["filesystem", "s3"])
def served(request: pytest.FixtureRequest) -> ServerProcess:
    name = "server" if request.param == "filesystem" else "s3_served"
    proc: ServerProcess = request.getfixturevalue(name)
    return proc


def wait_for(client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def test_stage_then_submit_transcribes_a_video(served: ServerProcess) -> None:
    speech = passage()
    with served.client() as client:
        staged = client.post(
            "/v1/uploads", files={"file": ("interview.mp4", speech_in("mp4", speech), "video/mp4")}
        )
        assert staged.status_code == 201, staged.text
        upload_id = staged.json()["id"]
        response = client.post(
            "/v1/jobs",
            json={
                "job_type": "transcribe",
                "input": {"kind": "upload", "upload_id": upload_id},
                "output": {"formats": ["text", "vtt"]},
            },
        )
        assert response.status_code == 201, response.text
        job = wait_for(client, response.json()["id"])
        assert job["state"] == "succeeded", job
        assert word_error_rate(speech.text, job["result"]["text"]) <= 0.10
        assert job["result"]["metadata"]["source_kind"] == "upload"
        vtt = client.get(job["result"]["artifacts"]["vtt"])
        assert vtt.status_code == 200
        captions = webvtt.from_buffer(io.StringIO(vtt.text))
        assert len(captions) >= 2
        # Used up: the upload is gone, so it cannot back a second job.
        again = client.post(
            "/v1/jobs",
            json={"job_type": "transcribe", "input": {"kind": "upload", "upload_id": upload_id}},
        )
        assert again.status_code == 400
        assert again.json()["error"]["message"] == "Unknown input.upload_id."


def test_an_oversized_upload_is_cut_off_and_leaves_nothing(s3_served: ServerProcess) -> None:
    with s3_served.client() as client:
        big = b"RIFF" + b"\x01" * (S3_LIMIT_BYTES + 2 * 1024 * 1024)
        response = client.post("/v1/uploads", files={"file": ("big.wav", big, "audio/wav")})
        assert response.status_code == 413
        assert "batch staging limit" in response.json()["error"]["message"]
        playlist = b"#EXTM3U\n" + b"http://127.0.0.1:1/x.ts\n" * 50
        response = client.post("/v1/uploads", files={"file": ("ep.mp3", playlist, "audio/mpeg")})
        assert response.status_code == 400
    assert list(s3_served.tmp_dir.iterdir()) == []  # no spooled body or temporary file left


def test_voxhelm_check_refuses_wrong_s3_credentials(s3_server: S3Server, tmp_path: Path) -> None:
    env = s3_server.env(s3_server.new_bucket())
    env["VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY"] = "a-wrong-secret"
    result = subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", "check"],
        env=process_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "voxhelm.E012" in output
    assert "refused the credentials" in output
    assert "a-wrong-secret" not in output
    good = s3_server.env(s3_server.new_bucket())
    result = subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", "check"],
        env=process_env(tmp_path, good),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

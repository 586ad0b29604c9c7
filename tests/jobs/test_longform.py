"""Long recordings through real ``voxhelm`` processes: chunks, progress with an estimate, a
resume after ``kill -9`` that does not redo finished chunks, a cancel that stops the rest.

A shorter file stands in for an hour (``VOXHELM_CHUNK_SECONDS`` at its minimum makes many
chunks); the speech is real Piper speech, transcribed by the real model.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_server, start_worker
from tests.jobs.media_server import MediaServer, serve_media
from tests.jobs.test_batch import FAST_JOBS, assert_clean_segments, poll, submit
from tests.media import speech_in
from tests.speech import long_recording, word_error_rate

pytestmark = pytest.mark.slow

CHUNKED = {**FAST_JOBS, "VOXHELM_CHUNK_SECONDS": "10", "VOXHELM_CHUNK_WORKERS": "1"}


def checkpoint_files(var_dir: Path, job_id: str) -> dict[str, bytes]:
    folder = var_dir / "artifacts" / "voxhelm" / "checkpoints" / job_id
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in folder.glob("chunk-*.json")}


def wait_for_checkpoints(var_dir: Path, job_id: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(checkpoint_files(var_dir, job_id)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} chunks checkpointed"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def media() -> Any:
    with serve_media() as server:
        yield server


def test_a_killed_long_job_resumes_without_redoing_finished_chunks(
    tmp_path: Path, media: MediaServer
) -> None:
    speech = long_recording()
    url = media.add("/episode.mp3", "audio/mpeg", speech_in("mp3", speech))
    web = start_server(tmp_path, CHUNKED, command="web")
    workers = [start_worker(tmp_path, CHUNKED, name="worker-1")]
    try:
        with web.client() as client:
            response = submit(client, url, output={"formats": ["text", "json"]})
            assert response.status_code == 201, response.text
            job_id = response.json()["id"]
            wait_for_checkpoints(web.var_dir, job_id, 3, timeout=300)
            workers[0].kill()
            kept = checkpoint_files(web.var_dir, job_id)
            assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "running"

            workers.append(start_worker(tmp_path, CHUNKED, name="worker-2"))
            seen = poll(client, job_id, {"succeeded"}, timeout=600)
            transcript = client.get(f"/v1/jobs/{job_id}/artifacts/transcript.json").json()
        job = seen[-1]
        log = workers[1].log()
        restored = re.search(r"chunks: (\d+) of (\d+) restored from checkpoints", log)
        assert restored is not None, log
        assert int(restored.group(1)) >= len(kept) >= 3
        assert int(restored.group(2)) > int(restored.group(1))
        assert word_error_rate(speech.text, job["result"]["text"]) <= 0.1
        # Progress of the second attempt moved forward, with an estimate of the time left.
        running = [body["progress"] for body in seen if body["state"] == "running"]
        restart = max(
            (
                i
                for i in range(1, len(running))
                if running[i]["percent"] < running[i - 1]["percent"]
            ),
            default=0,
        )
        second = running[restart:]  # before: the killed attempt's last report, until re-queued
        percents = [p["percent"] for p in second if p["phase"] == "transcribing"]
        assert percents == sorted(percents) and len(set(percents)) >= 3, percents
        assert any(p.get("eta_seconds") is not None for p in second)
        assert job["progress"]["eta_seconds"] is None
        # One stitched transcript: ids in order, times across the whole recording, in whole
        # milliseconds though each chunk's were moved by its offset (a sample count / 16000).
        segments = transcript["segments"]
        assert_clean_segments(segments)
        assert segments[-1]["end"] > speech.duration - 15
        assert set(transcript["voxhelm_flags"]) >= {"repaired", "suspect", "no_speech_ratio"}
        assert 0.0 <= transcript["voxhelm_flags"]["no_speech_ratio"] < 0.5
        assert checkpoint_files(web.var_dir, job_id) == {}  # dropped once the job ended
    finally:
        for worker in workers:
            worker.stop()
        web.stop()


def test_a_cancel_stops_the_remaining_chunks(tmp_path: Path, media: MediaServer) -> None:
    speech = long_recording()
    url = media.add("/canceled.mp3", "audio/mpeg", speech_in("mp3", speech))
    web = start_server(tmp_path, CHUNKED, command="web")
    worker = start_worker(tmp_path, CHUNKED)
    try:
        with web.client() as client:
            job_id = submit(client, url).json()["id"]
            wait_for_checkpoints(web.var_dir, job_id, 1, timeout=300)
            response = client.post(f"/v1/jobs/{job_id}/cancel")
            assert response.status_code == 200, response.text
            canceled = time.monotonic()
            while "stopped; the job is canceled" not in worker.log():
                assert time.monotonic() - canceled < 10, worker.log()
                time.sleep(0.05)
            assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "canceled"
            time.sleep(2)  # nothing more is transcribed or saved after the stop
            assert checkpoint_files(web.var_dir, job_id) == {}
            assert client.get(f"/v1/jobs/{job_id}/artifacts/transcript.txt").status_code == 404
        assert "succeeded" not in worker.log()
    finally:
        worker.stop()
        web.stop()

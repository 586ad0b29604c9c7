"""Batch jobs end to end: real ``voxhelm`` processes, real HTTP, the real model, real speech.

Media is served from a loopback HTTP server (127.0.0.1 is allowlisted and trusted for http
in the servers' environment). Artifacts are parsed with the libraries clients use:
``webvtt-py`` for VTT, ``pysrt`` for SRT, pydantic schemas for the JSON formats.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import pysrt
import pytest
import webvtt
from pydantic import BaseModel, ConfigDict

from tests.conftest import ServerProcess, start_server, start_worker, wait_until_logged
from tests.jobs.media_server import MediaServer, serve_media
from tests.media import speech_in
from tests.speech import EPISODE, Speech, passage, synthesize, word_error_rate

pytestmark = pytest.mark.slow

ALL_FORMATS = ["text", "json", "vtt", "srt", "dote", "podlove"]
ARTIFACT_NAMES = {
    "text": "transcript.txt",
    "json": "transcript.json",
    "vtt": "transcript.vtt",
    "srt": "transcript.srt",
    "dote": "transcript.dote.json",
    "podlove": "transcript.podlove.json",
}
FAST_JOBS = {
    "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
    "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
    "VOXHELM_JOB_HEARTBEAT_SECONDS": "1",
    "VOXHELM_JOB_STALE_SECONDS": "5",
    "VOXHELM_JOB_SWEEP_SECONDS": "1",
}


# -- schemas of the JSON artifacts ---------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JsonSegment(Strict):
    id: int
    seek: int
    start: float
    end: float
    text: str


class QualitySummary(Strict):
    segments: list[dict[str, Any]]
    repaired: list[tuple[float, float]]
    suspect: list[tuple[float, float]]
    dropped: list[tuple[float, float]]
    no_speech_ratio: float


class TranscriptJson(Strict):
    task: Literal["transcribe"]
    language: str | None
    text: str
    segments: list[JsonSegment]
    voxhelm_flags: QualitySummary


class DoteLine(Strict):
    startTime: str
    endTime: str
    speakerDesignation: str
    text: str


class Dote(Strict):
    lines: list[DoteLine]


class PodloveEntry(Strict):
    start: str
    start_ms: int
    end: str
    end_ms: int
    speaker: str
    voice: str
    text: str


class Podlove(Strict):
    version: Literal[1]
    transcripts: list[PodloveEntry]


# -- helpers -------------------------------------------------------------------------------


def long_speech(seconds: float) -> Speech:
    """The episode read again and again until it lasts at least ``seconds``."""
    once = passage(EPISODE, pause_seconds=0.8)
    times = math.ceil(seconds / once.duration)
    return Speech(
        text=" ".join([once.text] * times),
        samples=np.concatenate([once.samples] * times),
        sample_rate=once.sample_rate,
    )


def submit(client: httpx.Client, url: str, **fields: Any) -> httpx.Response:
    body = {"job_type": "transcribe", "input": {"kind": "url", "url": url}, **fields}
    return client.post("/v1/jobs", json=body)


def poll(
    client: httpx.Client, job_id: str, until: set[str], timeout: float
) -> list[dict[str, Any]]:
    """Every job body seen until its state is in ``until`` (the last one is that body)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        seen.append(body)
        if body["state"] in until:
            return seen
        if body["state"] in {"failed", "canceled"}:
            raise AssertionError(f"job ended {body['state']}: {body}")
        time.sleep(0.25)
    raise AssertionError(f"job not {until} after {timeout}s: {seen[-1]}")


def assert_clean_segments(segments: list[dict[str, Any]]) -> None:
    """transcript.json segments: ids in order, texts trimmed, times in whole milliseconds."""
    assert [s["id"] for s in segments] == list(range(len(segments)))
    for segment in segments:
        assert segment["text"] == segment["text"].strip(), segment
        for time_ in (segment["start"], segment["end"]):
            assert round(time_ * 1000) / 1000 == time_, segment


def wait_for_phase(client: httpx.Client, job_id: str, phase: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["state"] == "running" and body["progress"]["phase"] == phase:
            return
        assert body["state"] in {"queued", "running"}, body
        time.sleep(0.1)
    raise AssertionError(f"job never reached phase {phase}")


def artifact_rows(var_dir: Path, job_id: str) -> list[tuple[str, int, str]]:
    """(name, exposed, storage_key) of every artifact row of the job, from the server's DB."""
    with sqlite3.connect(f"file:{var_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:
        return sorted(
            db.execute(
                "SELECT name, exposed, storage_key FROM voxhelm_artifacts_jobartifact "
                "WHERE job_id = ?",
                (uuid.UUID(job_id).hex,),
            ).fetchall()
        )


def job_row(var_dir: Path, job_id: str) -> tuple[int, str]:
    with sqlite3.connect(f"file:{var_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT attempt_count, worker_identity FROM voxhelm_jobs_job WHERE id = ?",
            (uuid.UUID(job_id).hex,),
        ).fetchone()
    return int(row[0]), str(row[1])


def files_in(var_dir: Path, job_id: str) -> list[str]:
    folder = var_dir / "artifacts" / "voxhelm" / "jobs" / job_id
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        yield server


# -- tests ---------------------------------------------------------------------------------


def test_a_ten_minute_url_job_yields_every_format(
    server: ServerProcess, media: MediaServer
) -> None:
    speech = long_speech(600)
    url = media.add("/episode.mp3", "audio/mpeg", speech_in("mp3", speech))
    started = time.monotonic()
    with server.client() as client:
        response = submit(client, url, output={"formats": ALL_FORMATS}, task_ref="ten-minutes")
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        seen = poll(client, job_id, {"succeeded"}, timeout=1200)
        elapsed = time.monotonic() - started
        states = [body["state"] for body in seen]
        assert states[0] in {"queued", "running"}
        assert "running" in states
        progress = [b["progress"]["percent"] for b in seen if b["state"] == "running"]
        assert any(0 < percent < 100 for percent in progress), progress
        assert progress == sorted(progress)  # never goes backwards within one attempt

        job = seen[-1]
        assert job["progress"] == {"percent": 100, "phase": None, "eta_seconds": None}
        metadata = job["result"]["metadata"]
        assert metadata["duration_seconds"] == pytest.approx(speech.duration, abs=1.0)
        assert metadata["source_url"] == url
        assert metadata["source_content_type"] == "audio/mpeg"
        assert job["result"]["artifacts"] == {
            key: f"/v1/jobs/{job_id}/artifacts/{name}" for key, name in ARTIFACT_NAMES.items()
        }
        bodies = {key: client.get(path) for key, path in job["result"]["artifacts"].items()}
    print(
        f"\n10-minute job: audio {speech.duration:.0f}s, wall {elapsed:.0f}s, "
        f"processing {metadata['processing_seconds']:.0f}s, progress seen {sorted(set(progress))}"
    )
    assert all(r.status_code == 200 for r in bodies.values())

    text = bodies["text"].text
    assert text == job["result"]["text"]
    wer = word_error_rate(speech.text, text)
    print(f"10-minute job: WER {wer:.3f}")
    assert wer <= 0.15

    captions = webvtt.from_string(bodies["vtt"].text).captions
    subtitles = pysrt.from_string(bodies["srt"].text)
    transcript = TranscriptJson.model_validate_json(bodies["json"].content)
    dote = Dote.model_validate_json(bodies["dote"].content)
    podlove = Podlove.model_validate_json(bodies["podlove"].content)
    assert len(captions) == len(subtitles) == len(transcript.segments) > 50
    assert len(dote.lines) == len(podlove.transcripts) == len(captions)
    assert transcript.text == text
    assert transcript.language == "en"
    for caption, subtitle, segment in zip(captions, subtitles, transcript.segments, strict=True):
        assert caption.text.strip() == subtitle.text.strip() == segment.text.strip()
        assert caption.start_time.in_milliseconds() == pytest.approx(segment.start * 1000, abs=1)
        assert subtitle.start.ordinal == caption.start_time.in_milliseconds()
        assert subtitle.end.ordinal == caption.end_time.in_milliseconds()
    assert podlove.transcripts[-1].end_ms <= (speech.duration + 1) * 1000
    assert bodies["vtt"].headers["content-type"] == "text/vtt; charset=utf-8"
    assert bodies["srt"].headers["content-type"] == "application/x-subrip; charset=utf-8"


def test_a_video_url_is_transcribed_from_its_audio_track(
    server: ServerProcess, media: MediaServer
) -> None:
    speech = passage()
    url = media.add("/clip.mp4", "video/mp4", speech_in("mp4", speech))
    with server.client() as client:
        response = submit(client, url, output={"formats": ["text", "vtt"]})
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        job = poll(client, job_id, {"succeeded"}, timeout=300)[-1]
        assert word_error_rate(speech.text, job["result"]["text"]) <= 0.10
        assert job["result"]["metadata"]["source_content_type"] == "video/mp4"
        assert set(job["result"]["artifacts"]) == {"text", "vtt"}
        hidden = client.get(f"/v1/jobs/{job_id}/artifacts/extracted-audio.wav")
        assert hidden.status_code == 404
        assert hidden.json()["error"]["type"] == "invalid_request_error"
    rows = artifact_rows(server.var_dir, job_id)
    assert [(name, exposed) for name, exposed, _ in rows] == [
        ("extracted-audio.wav", 0),
        ("source.mp4", 0),
        ("transcript.txt", 1),
        ("transcript.vtt", 1),
    ]
    wav = (
        server.var_dir
        / "artifacts"
        / dict((n, k) for n, _, k in rows).get("extracted-audio.wav", "")
    )
    assert wav.read_bytes()[:4] == b"RIFF"


def test_twenty_concurrent_identical_submissions_make_one_job(
    server: ServerProcess, media: MediaServer
) -> None:
    url = media.add("/race.mp3", "audio/mpeg", speech_in("mp3", synthesize("Hello there.")))
    task_ref = f"race-{uuid.uuid4()}"
    barrier = threading.Barrier(20)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def post() -> None:
        with server.client() as client:
            barrier.wait()
            response = submit(client, url, task_ref=task_ref, output={"formats": ["text"]})
        with lock:
            answers.append((response.status_code, response.json().get("id", response.text)))

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 19 + [201], answers
    assert len({job_id for _, job_id in answers}) == 1
    with server.client() as client:
        poll(client, answers[0][1], {"succeeded"}, timeout=300)


def test_a_killed_worker_s_job_is_requeued_and_finished_once(
    tmp_path: Path, media: MediaServer
) -> None:
    speech = long_speech(90)
    url = media.add("/killed.mp3", "audio/mpeg", speech_in("mp3", speech))
    web = start_server(tmp_path, FAST_JOBS, command="web")
    workers = [start_worker(tmp_path, FAST_JOBS, name="worker-1")]
    try:
        wait_until_logged(workers[0], "default STT model", 120)  # loaded at start
        with web.client() as client:
            response = submit(client, url, output={"formats": ALL_FORMATS})
            assert response.status_code == 201, response.text
            job_id = response.json()["id"]
            wait_for_phase(client, job_id, "transcribing", timeout=300)
            workers[0].kill()
            assert artifact_rows(web.var_dir, job_id)[0][0] == "source.mp3"
            time.sleep(1)
            assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "running"

            workers.append(start_worker(tmp_path, FAST_JOBS, name="worker-2"))
            seen = poll(client, job_id, {"succeeded"}, timeout=900)
        job = seen[-1]
        assert word_error_rate(speech.text, job["result"]["text"]) <= 0.15
        attempts, worker = job_row(web.var_dir, job_id)
        assert attempts == 2
        assert worker.endswith(f":{workers[1].process.pid}")
        rows = artifact_rows(web.var_dir, job_id)
        names = [name for name, _, _ in rows]
        assert names == sorted(["source.mp3", *ARTIFACT_NAMES.values()])
        assert files_in(web.var_dir, job_id) == names
        # Every server process sweeps now: the web process or the new worker re-queues it.
        assert "re-queued" in workers[1].log() + web.log()
    finally:
        for worker_process in workers:
            worker_process.stop()
        web.stop()

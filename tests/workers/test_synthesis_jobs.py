"""Synthesis jobs on remote workers: who may claim one, what the claim says, and what a
completion must hold (each speech file, as the server would have stored it)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jobs.conftest import JobsApi
from tests.jobs.test_views import body_of
from tests.workers.conftest import WorkerApi, entry
from tests.workers.test_claim import error
from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobState
from voxhelm.storage.stores import store_for_identity
from voxhelm.tts import catalog

TEXT = "The lighthouse keeper counted seven ships."
MIME = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}


def submit_speech(jobs: JobsApi, formats: tuple[str, ...] = ("wav", "flac")) -> str:
    response = jobs.submit(
        {
            "job_type": "synthesize",
            "input": {"kind": "text", "text": TEXT},
            "speed": 1.25,
            "output": {"formats": list(formats)},
        }
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def speech_manifest(
    config: Config, job: dict[str, Any], formats: tuple[str, ...], **extra: Any
) -> list[dict[str, Any]]:
    """Write a (tiny) file per format under the attempt prefix, as a worker would."""
    store = store_for_identity(job["artifact_store"], config.artifacts)
    manifest = []
    for fmt in formats:
        data = f"{fmt} speech bytes".encode()
        item = entry(job, f"speech.{fmt}", data, f"speech_{fmt}", fmt, MIME[fmt], **extra)
        store.put_bytes(item["storage_key"], data, MIME[fmt])
        manifest.append(item)
    return manifest


def done(job: dict[str, Any], manifest: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "lease_token": job["lease_token"],
        "result_text": "",
        "result_metadata": {
            "backend": "piper",
            "model": "piper",
            "voice": "https://attacker.example/voice",
            "language": "en",
            "duration_seconds": 2.5,
            "processing_seconds": 0.4,
        },
        "artifacts": manifest,
    }


def test_a_worker_that_synthesizes_claims_a_synthesis_job(
    worker: WorkerApi, jobs: JobsApi, remote_config: Config
) -> None:
    job_id = submit_speech(jobs)
    response = worker.claim()
    assert response.status_code == 200, response.content
    job = response.json()["job"]
    voice = catalog(remote_config.tts).resolve(None).name
    assert (job["id"], job["job_type"], job["backend"], job["model"]) == (
        job_id,
        "synthesize",
        "piper",
        "piper",
    )
    assert job["input"] == {"kind": "text", "text": TEXT}
    assert job["output"] == {
        "formats": ["wav", "flac"],
        "diarization": {},
        "voice": voice,
        "speed": 1.25,
    }
    assert job["artifact_prefix"].endswith(f"/jobs/{job_id}/attempt-1/")


@pytest.mark.parametrize(
    "change",
    [
        {"job_types": ["transcribe"]},  # an older worker: it never says synthesize
        {"voices": ["some-other-voice"]},
        {"output_formats": ["wav"]},  # the job asks for flac too
    ],
)
def test_a_worker_that_cannot_synthesize_it_gets_no_synthesis_job(
    worker: WorkerApi, jobs: JobsApi, change: dict[str, Any]
) -> None:
    submit_speech(jobs)
    worker.capabilities = {**worker.capabilities, **change}
    assert worker.claim().status_code == 204
    assert Job.objects.get().state == JobState.QUEUED


def test_a_completion_records_the_speech_files(
    worker: WorkerApi, jobs: JobsApi, remote_config: Config
) -> None:
    submit_speech(jobs)
    job = worker.claim().json()["job"]
    manifest = speech_manifest(remote_config, job, ("wav", "flac"))
    response = worker.complete(job["id"], **done(job, manifest))
    assert response.status_code == 200, response.content
    body = jobs.get(job["id"]).json()
    assert body["state"] == "succeeded"
    assert sorted(body["result"]["artifacts"]) == ["flac", "wav"]
    metadata = body["result"]["metadata"]
    # The voice is the server's (resolved at submission), never the worker's text.
    assert metadata["voice"] == job["output"]["voice"]
    assert (metadata["execution_mode"], metadata["worker_id"]) == ("remote_pull", "atlas")
    assert (metadata["backend"], metadata["duration_seconds"]) == ("piper", 2.5)
    assert "source_kind" not in metadata
    flac = jobs.artifact(job["id"], "speech.flac")
    assert (flac.status_code, flac["Content-Type"]) == (200, "audio/flac")
    assert body_of(flac) == b"flac speech bytes"


@pytest.mark.parametrize(
    ("formats", "tamper", "message"),
    [
        (("wav",), {}, "Missing speech artifact format(s): flac."),
        (("wav", "flac", "mp3"), {}, "Unexpected artifact 'speech.mp3' for a synthesis job."),
        (("wav", "flac"), {"exposed": False}, "Artifact speech.wav must be exposed."),
        (
            ("wav", "flac"),
            {"content_type": "text/plain"},
            "Artifact speech.wav content_type must be audio/wav.",
        ),
        (
            ("wav", "flac"),
            {"kind": "source"},
            "Artifact speech.wav does not match its audio format.",
        ),
    ],
)
def test_a_wrong_speech_manifest_is_refused_and_the_job_keeps_running(
    worker: WorkerApi,
    jobs: JobsApi,
    remote_config: Config,
    formats: tuple[str, ...],
    tamper: dict[str, Any],
    message: str,
) -> None:
    submit_speech(jobs)
    job = worker.claim().json()["job"]
    manifest = speech_manifest(remote_config, job, formats)
    manifest[0].update(tamper)
    response = worker.complete(job["id"], **done(job, manifest))
    assert response.status_code == 400
    assert error(response) == message
    assert Job.objects.get().state == JobState.RUNNING

"""The diarization step in-process: failures fail the job clearly, progress shows the phase,
and word timestamps are asked for only when they are used."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.diarization.conversation import TWO_SPEAKERS, converse, has_espeak
from tests.jobs.media_server import MediaServer, serve_media
from voxhelm.api.validation import parse
from voxhelm.artifacts.models import JobArtifact
from voxhelm.audio import Audio
from voxhelm.config import Config
from voxhelm.diarization.pyannote import MISSING_TOKEN_MESSAGE
from voxhelm.jobs import pipeline
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.schemas import JobSubmission
from voxhelm.jobs.submit import submit
from voxhelm.stt.registry import ENGINES
from voxhelm.transcript import Segment, Transcript, Word

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run"),
]


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        server.add("/talk.wav", "audio/wav", converse(TWO_SPEAKERS[:4]).wav_bytes())
        yield server


@pytest.fixture
def stt(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Recognition is not under test here: a fixed two-segment transcript, with words, at
    once; the requests the pipeline made are recorded."""
    requests: list[Any] = []

    def transcribe(audio: Audio, model: str, request: Any, config: Any) -> Transcript:
        requests.append(request)
        words = (Word(0.3, 1.0, " Welcome"), Word(1.0, 2.0, " back"), Word(2.0, 3.9, " home."))
        segments = [
            Segment(id=0, start=0.3, end=3.9, text=" Welcome back home.", words=words),
            Segment(id=1, start=4.5, end=8.6, text=" Thanks for having me."),
        ]
        return Transcript.from_segments(segments, "en", audio.duration, backend="x", model="y")

    monkeypatch.setattr(ENGINES, "transcribe", transcribe)
    return requests


def run_job(config: Config, url: str, diarization: dict[str, Any]) -> Job:
    request = parse(
        JobSubmission,
        {
            "job_type": "transcribe",
            "input": {"kind": "url", "url": url},
            "output": {"formats": ["json", "dote"]},
            "diarization": diarization,
        },
    )
    job = submit("archive", request, config).job
    job.refresh_from_db()
    pipeline.run(str(job.pk), task_id=job.django_task_id, worker="test:1", config=config)
    job.refresh_from_db()
    return job


@pytest.fixture
def jobs(configure: Callable[..., Config]) -> Callable[..., Config]:
    def apply(**env: str) -> Config:
        return configure(
            VOXHELM_ALLOWED_URL_HOSTS="127.0.0.1:*", VOXHELM_TRUSTED_HTTP_HOSTS="127.0.0.1", **env
        )

    return apply


def test_a_diarization_failure_fails_the_job_with_a_clear_code(
    jobs: Callable[..., Config], media: MediaServer, stt: list[Any]
) -> None:
    config = jobs(VOXHELM_DIARIZATION_BACKEND="pyannote")  # and no token
    job = run_job(config, media.url("/talk.wav"), {"enabled": True})
    assert job.state == JobState.FAILED
    assert (job.error_code, job.error_detail) == ("diarization_unavailable", MISSING_TOKEN_MESSAGE)
    names = set(JobArtifact.objects.filter(job=job).values_list("name", flat=True))
    assert names == {"source.wav"}  # no transcript without the labels that were asked for


def test_a_diarized_job_labels_the_transcript_and_records_the_request(
    jobs: Callable[..., Config], media: MediaServer, stt: list[Any]
) -> None:
    config = jobs()
    job = run_job(config, media.url("/talk.wav"), {"enabled": True, "max_speakers": 3})
    assert job.state == JobState.SUCCEEDED, job.error_detail
    assert job.result_metadata["diarization"] == {"enabled": True, "max_speakers": 3}
    assert stt[-1].word_timestamps is True
    body = JobArtifact.objects.get(job=job, name="transcript.json").open(config.artifacts).read()
    assert b'"speaker": "Speaker 1"' in body and b'"speaker": "Speaker 2"' in body


def test_without_diarization_nothing_changes(
    jobs: Callable[..., Config], media: MediaServer, stt: list[Any]
) -> None:
    config = jobs()
    job = run_job(config, media.url("/talk.wav"), {"enabled": False})
    assert job.state == JobState.SUCCEEDED, job.error_detail
    assert "diarization" not in job.result_metadata
    assert stt[-1].word_timestamps is False
    body = JobArtifact.objects.get(job=job, name="transcript.json").open(config.artifacts).read()
    assert b"speaker" not in body

"""The batch pipeline, run in-process: steps, failures, cancellation, clean re-runs.

Media comes over real HTTP from a loopback server. Tests about job bookkeeping replace the
STT engine with one that returns a fixed transcript at once (recognition is not what they
check, and the real model is exercised by the first test here and by test_batch.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.jobs.media_server import MediaServer, serve_media
from tests.media import speech_in
from tests.s3server import S3Server
from tests.speech import synthesize, word_error_rate
from tests.stores import leave_interrupted_write, list_names
from voxhelm.api.validation import parse
from voxhelm.artifacts.models import JobArtifact
from voxhelm.audio import Audio
from voxhelm.config import Config
from voxhelm.jobs import pipeline
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.schemas import JobSubmission
from voxhelm.jobs.submit import submit
from voxhelm.jobs.sweeper import sweep
from voxhelm.storage.stores import active_store
from voxhelm.stt.registry import ENGINES
from voxhelm.transcript import Segment, Transcript

pytestmark = pytest.mark.django_db(transaction=True)

ALL_FORMATS = ["text", "json", "vtt", "srt", "dote", "podlove"]
SENTENCE = "Please turn on the kitchen lights."


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        server.add("/clip.mp3", "audio/mpeg", speech_in("mp3", synthesize(SENTENCE)))
        server.add("/noise.mp3", "audio/mpeg", b"this is not audio at all" * 100)
        yield server


@pytest.fixture(params=["filesystem", "s3"])
def config(request: pytest.FixtureRequest, configure: Callable[..., Config]) -> Config:
    """The pipeline on each artifact store: the filesystem, and a real S3 server."""
    store: dict[str, str] = {}
    if request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        store = s3.env(s3.new_bucket(), prefix="studio")
    return configure(
        VOXHELM_ALLOWED_URL_HOSTS="127.0.0.1:*",
        VOXHELM_TRUSTED_HTTP_HOSTS="127.0.0.1",
        **{"VOXHELM_ARTIFACT_PREFIX": "studio", **store},
    )


def new_job(config: Config, url: str, formats: list[str] | None = None) -> Job:
    request = parse(
        JobSubmission,
        {
            "job_type": "transcribe",
            "input": {"kind": "url", "url": url},
            "output": {"formats": formats or ["text", "json"]},
        },
    )
    return submit("archive", request, config).job


def run(job: Job, config: Config) -> Job:
    job.refresh_from_db()
    pipeline.run(str(job.pk), task_id=job.django_task_id, worker="test:1", config=config)
    job.refresh_from_db()
    return job


def files_of(config: Config, job: Job) -> list[str]:
    """Names of the objects in the job's folder of the active store (temporaries too)."""
    return list_names(config, f"studio/jobs/{job.pk}")


@pytest.fixture
def fixed_transcript(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[Job], None]]:
    """Replace the engine with a fixed transcript; hooks run inside the 'inference'."""
    hooks: list[Callable[[Job], None]] = []

    def transcribe(audio: Audio, model: str, request: Any, config: Any) -> Transcript:
        for hook in hooks:
            hook(Job.objects.get())
        segments = [Segment(id=0, start=0.0, end=1.5, text=" Fixed words.")]
        return Transcript.from_segments(segments, "en", audio.duration, backend="x", model="y")

    monkeypatch.setattr(ENGINES, "transcribe", transcribe)
    return hooks


@pytest.mark.slow
def test_it_transcribes_a_url_into_every_format(config: Config, media: MediaServer) -> None:
    job = run(new_job(config, media.url("/clip.mp3"), ALL_FORMATS), config)

    assert job.state == JobState.SUCCEEDED, job.error_detail
    assert (job.progress, job.phase, job.attempt_count) == (100, "", 1)
    assert word_error_rate(SENTENCE, job.result_text) <= 0.2, job.result_text
    metadata = job.result_metadata
    assert metadata["source_url"] == media.url("/clip.mp3")
    assert (metadata["source_kind"], metadata["source_name"]) == ("url", "clip.mp3")
    assert metadata["source_content_type"] == "audio/mpeg"
    assert (metadata["backend"], metadata["requested_model"]) == ("fasterwhisper", "auto")
    assert 1.0 < metadata["duration_seconds"] < 5.0
    artifacts = {a.name: a for a in JobArtifact.objects.filter(job=job)}
    assert sorted(artifacts) == sorted(
        [
            "source.mp3",
            "transcript.txt",
            "transcript.json",
            "transcript.vtt",
            "transcript.srt",
            "transcript.dote.json",
            "transcript.podlove.json",
        ]
    )
    assert not artifacts["source.mp3"].exposed
    assert sum(a.exposed for a in artifacts.values()) == 6
    store = active_store(config.artifacts)
    for artifact in artifacts.values():
        assert artifact.storage_key == f"studio/jobs/{job.pk}/{artifact.name}"
        assert artifact.storage_identity == store.identity()
        assert artifact.storage_identity["backend"] == config.artifacts.backend
        with store.open(artifact.storage_key) as stream:
            data = stream.read()
        assert (artifact.size_bytes, artifact.sha256) == (
            len(data),
            hashlib.sha256(data).hexdigest(),
        )
    assert files_of(config, job) == sorted(artifacts)


def test_it_fails_a_job_whose_host_left_the_allowlist(
    config: Config, media: MediaServer, configure: Callable[..., Config]
) -> None:
    job = new_job(config, media.url("/clip.mp3"))
    media.hits.clear()
    changed = configure(VOXHELM_ALLOWED_URL_HOSTS="media.example.com")
    job = run(job, changed)
    assert job.state == JobState.FAILED
    assert (job.error_code, job.error_detail) == (
        "url_not_allowed",
        "URL host is not in the configured allowlist.",
    )
    assert media.hits == []
    assert not JobArtifact.objects.filter(job=job).exists()


def test_it_fails_with_the_fetchers_message(config: Config, media: MediaServer) -> None:
    job = run(new_job(config, media.url("/missing.mp3")), config)
    assert (job.state, job.error_code) == (JobState.FAILED, "fetch_failed")
    assert job.error_detail == "URL fetch failed with HTTP 404."


def test_it_fails_undecodable_media_and_keeps_only_the_source(
    config: Config, media: MediaServer
) -> None:
    job = run(new_job(config, media.url("/noise.mp3")), config)
    assert (job.state, job.error_code) == (JobState.FAILED, "unsupported_media")
    assert job.error_detail == "The media could not be decoded."
    assert [a.name for a in JobArtifact.objects.filter(job=job)] == ["source.mp3"]


def test_an_internal_error_leaves_only_an_error_id_in_the_job(
    config: Config,
    media: MediaServer,
    fixed_transcript: list[Callable[[Job], None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def crash(job: Job) -> None:
        raise RuntimeError("engine crashed reading /srv/secret/model.bin")

    fixed_transcript.append(crash)
    with caplog.at_level(logging.ERROR, logger="voxhelm.jobs"):
        job = run(new_job(config, media.url("/clip.mp3")), config)
    assert (job.state, job.error_code) == (JobState.FAILED, "internal_error")
    found = re.fullmatch(
        r"The job failed because of an internal error \(error id ([0-9a-f]{12})\)\.",
        job.error_detail,
    )
    assert found, job.error_detail
    assert "/srv/secret" not in job.error_detail
    logged = [r for r in caplog.records if found[1] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_a_job_canceled_during_inference_writes_no_transcripts(
    config: Config, media: MediaServer, fixed_transcript: list[Callable[[Job], None]]
) -> None:
    fixed_transcript.append(lambda job: job.cancel())
    job = run(new_job(config, media.url("/clip.mp3"), ALL_FORMATS), config)
    assert job.state == JobState.CANCELED
    assert [a.name for a in JobArtifact.objects.filter(job=job)] == ["source.mp3"]
    assert files_of(config, job) == ["source.mp3"]


def test_a_rerun_replaces_the_artifacts_of_the_lost_attempt(
    config: Config, media: MediaServer, fixed_transcript: list[Callable[[Job], None]]
) -> None:
    job = run(new_job(config, media.url("/clip.mp3"), ["text", "json"]), config)
    assert job.state == JobState.SUCCEEDED
    first_rows = set(JobArtifact.objects.filter(job=job).values_list("pk", flat=True))
    # The worker of a second attempt dies mid-write: the job is still running, silent,
    # with a half-written temporary file in its folder.
    Job.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    leave_interrupted_write(config, f"studio/jobs/{job.pk}")
    assert sweep(config).requeued == [job.pk]

    job = run(job, config)

    assert job.state == JobState.SUCCEEDED
    assert job.attempt_count == 2
    rows = JobArtifact.objects.filter(job=job)
    assert sorted(a.name for a in rows) == ["source.mp3", "transcript.json", "transcript.txt"]
    assert first_rows.isdisjoint(a.pk for a in rows)
    assert files_of(config, job) == ["source.mp3", "transcript.json", "transcript.txt"]


def test_the_source_is_named_apart_from_transcripts_and_keeps_the_submitted_url(
    config: Config, media: MediaServer, fixed_transcript: list[Callable[[Job], None]]
) -> None:
    # The reference named the source after the input: "transcript.json" here, colliding
    # with the JSON transcript; and it reported the URL after redirects as source_url.
    media.add("/transcript.json", "audio/mpeg", media.files["/clip.mp3"][1])
    media.redirects["/latest"] = "/transcript.json"
    job = run(new_job(config, media.url("/latest"), ["text", "json"]), config)
    assert job.state == JobState.SUCCEEDED, job.error_detail
    names = sorted(a.name for a in JobArtifact.objects.filter(job=job))
    assert names == ["source.mp3", "transcript.json", "transcript.txt"]
    assert job.result_metadata["source_url"] == media.url("/latest")
    assert job.result_metadata["source_name"] == "transcript.json"


def test_it_skips_a_job_that_is_not_waiting_for_this_task(
    config: Config, media: MediaServer
) -> None:
    job = new_job(config, media.url("/clip.mp3"))
    pipeline.run(str(job.pk), task_id="some-other-task", worker="test:1", config=config)
    job.refresh_from_db()
    assert (job.state, job.attempt_count) == (JobState.QUEUED, 0)
    assert files_of(config, job) == []

"""Jobs over staged uploads, on each store: attach checks in the reference's order, the
claim and its release, deletion after success, and the retention sweep (races included)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import close_old_connections
from django.utils import timezone

from tests.conftest import OTHER_PRODUCER_TOKEN
from tests.speech import word_error_rate
from tests.stores import list_keys
from tests.uploads.conftest import SENTENCE, UploadsApi
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.jobs import pipeline
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.staged import sweep_uploads
from voxhelm.stt.registry import ENGINES
from voxhelm.transcript import Segment, Transcript
from voxhelm.uploads.models import StagedUpload


def staged(config: Config) -> list[str]:
    return list_keys(config, "voxhelm/staged-inputs")


def run(job_id: str, config: Config) -> Job:
    job = Job.objects.get(pk=job_id)
    pipeline.run(job_id, task_id=job.django_task_id, worker="test:1", config=config)
    return Job.objects.get(pk=job_id)


def stage(api: UploadsApi, data: bytes, **kwargs: Any) -> str:
    response = api.stage(data, **kwargs)
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def expire(upload_id: str) -> None:
    StagedUpload.objects.filter(pk=upload_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.fixture
def failing_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine fails as a crashed model would (the failure path is what is under test)."""

    def transcribe(*args: Any, **kwargs: Any) -> Transcript:
        raise RuntimeError("engine crashed")

    monkeypatch.setattr(ENGINES, "transcribe", transcribe)


@pytest.fixture
def fixed_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    def transcribe(audio: Any, model: str, request: Any, config: Any) -> Transcript:
        segments = [Segment(id=0, start=0.0, end=1.0, text=" Fixed.")]
        return Transcript.from_segments(segments, "en", audio.duration, backend="x", model="y")

    monkeypatch.setattr(ENGINES, "transcribe", transcribe)


def test_a_staged_upload_is_transcribed_and_then_deleted(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    upload_id = stage(api, speech_wav, filename="lighthouse.wav")
    response = api.submit(upload_id, output={"formats": ["text", "json", "vtt"]})
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    job = Job.objects.get(pk=job_id)
    assert job.input_data == {
        "kind": "upload",
        "upload_id": upload_id,
        "filename": "lighthouse.wav",
        "content_type": "audio/wav",
        "size_bytes": len(speech_wav),
    }
    assert StagedUpload.objects.get(pk=upload_id).claimed_by_job_id == job.pk

    job = run(job_id, config)

    assert job.state == JobState.SUCCEEDED, job.error_detail
    assert word_error_rate(SENTENCE, job.result_text) <= 0.15, job.result_text
    metadata = job.result_metadata
    assert (metadata["source_kind"], metadata["source_name"], metadata["source_url"]) == (
        "upload", "lighthouse.wav", ""
    )  # fmt: skip
    source = JobArtifact.objects.get(job=job, kind="source")
    assert (source.name, source.exposed, source.size_bytes) == (
        "source.wav",
        False,
        len(speech_wav),
    )
    assert not StagedUpload.objects.filter(pk=upload_id).exists()
    assert staged(config) == []
    body = api.client.get(f"/v1/jobs/{job_id}", headers=api.auth("test-token")).json()
    assert "staged-inputs" not in str(body)


def test_the_checks_run_in_the_reference_order(
    api: UploadsApi, config: Config, speech_wav: bytes, fixed_engine: None
) -> None:
    def error(response: Any) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["message"]

    unknown = "2b4e8f0a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
    assert error(api.submit(unknown)) == (400, "Unknown input.upload_id.")
    assert error(api.submit("not-a-uuid")) == (400, "input.upload_id must be a UUID string.")
    assert error(api.submit("")) == (400, "Batch upload transcription requires input.upload_id.")
    upload_id = stage(api, speech_wav)
    # Private to its producer: another producer's id is unknown to this one.
    assert error(api.submit(upload_id, token=OTHER_PRODUCER_TOKEN)) == (
        400, "Unknown input.upload_id."
    )  # fmt: skip
    first = api.submit(upload_id)
    assert first.status_code == 201
    assert error(api.submit(upload_id)) == (
        409, "input.upload_id has already been attached to a job."
    )  # fmt: skip
    expired_id = stage(api, speech_wav)
    expire(expired_id)
    assert error(api.submit(expired_id)) == (
        400, "input.upload_id has expired. Stage the media again."
    )  # fmt: skip
    assert Job.objects.count() == 1  # rejected submissions made no job


def test_a_task_ref_retry_returns_the_job_that_holds_the_upload(
    api: UploadsApi, speech_wav: bytes
) -> None:
    upload_id = stage(api, speech_wav)
    first = api.submit(upload_id, task_ref="episode-7")
    again = api.submit(upload_id, task_ref="episode-7")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_an_upload_from_another_store_is_refused(
    api: UploadsApi, configure: Callable[..., Config], speech_wav: bytes, tmp_path: Any
) -> None:
    upload_id = stage(api, speech_wav)
    configure(VOXHELM_ARTIFACT_ROOT=str(tmp_path / "moved"))  # a different store now
    response = api.submit(upload_id)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "input.upload_id was staged with a different artifact store. Stage the media again."
    )
    assert not Job.objects.exists()


def test_a_failed_job_releases_its_upload_for_a_new_job(
    api: UploadsApi, config: Config, speech_wav: bytes, failing_engine: None
) -> None:
    upload_id = stage(api, speech_wav)
    job = run(api.submit(upload_id).json()["id"], config)
    assert job.state == JobState.FAILED
    upload = StagedUpload.objects.get(pk=upload_id)
    assert upload.claimed_by_job_id is None
    assert len(staged(config)) == 1  # the object is kept for the retry
    retry = api.submit(upload_id)
    assert retry.status_code == 201, retry.content
    assert StagedUpload.objects.get(pk=upload_id).claimed_by_job_id is not None


def test_a_canceled_job_releases_its_upload(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    upload_id = stage(api, speech_wav)
    job_id = api.submit(upload_id).json()["id"]
    canceled = api.client.post(f"/v1/jobs/{job_id}/cancel", headers=api.auth("test-token"))
    assert canceled.json()["state"] == "canceled"
    assert StagedUpload.objects.get(pk=upload_id).claimed_by_job_id is None
    assert api.submit(upload_id).status_code == 201


def test_a_job_whose_upload_vanished_fails_clearly(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    upload_id = stage(api, speech_wav)
    job_id = api.submit(upload_id).json()["id"]
    for key in staged(config):
        from voxhelm.storage.stores import active_store

        active_store(config.artifacts).delete(key)
    job = run(job_id, config)
    assert (job.state, job.error_code) == (JobState.FAILED, "upload_gone")
    assert "Stage the media again" in job.error_detail


def test_the_sweep_deletes_expired_unclaimed_uploads_only(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    fresh = stage(api, speech_wav)
    old = stage(api, speech_wav)
    claimed = stage(api, speech_wav)
    assert api.submit(claimed).status_code == 201
    expire(old)
    expire(claimed)

    report = sweep_uploads(config)

    assert [str(u) for u in report.deleted] == [old]
    assert set(StagedUpload.objects.values_list("pk", flat=True).iterator()) == {
        StagedUpload.objects.get(pk=fresh).pk,
        StagedUpload.objects.get(pk=claimed).pk,
    }
    assert len(staged(config)) == 2


def test_the_sweep_settles_uploads_of_jobs_that_ended_elsewhere(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    done, gave_up = stage(api, speech_wav), stage(api, speech_wav)
    done_job = api.submit(done).json()["id"]
    gave_up_job = api.submit(gave_up).json()["id"]
    # Ended without running the pipeline here (e.g. the job sweeper abandoned the job).
    Job.objects.filter(pk=done_job).update(state=JobState.SUCCEEDED, finished_at=timezone.now())
    Job.objects.filter(pk=gave_up_job).update(state=JobState.FAILED, finished_at=timezone.now())

    report = sweep_uploads(config)

    assert len(report.settled) == 2
    assert not StagedUpload.objects.filter(pk=done).exists()
    assert StagedUpload.objects.get(pk=gave_up).claimed_by_job_id is None
    assert len(staged(config)) == 1


def test_a_claim_after_the_sweep_marked_an_upload_loses(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    upload_id = stage(api, speech_wav)
    upload = StagedUpload.objects.get(pk=upload_id)
    expire(upload_id)
    from django.db.models import Q

    assert upload.mark_deleting(Q(claimed_by_job__isnull=True))
    job = Job.objects.create(producer="archive", job_type="transcribe", input_data={})
    assert not upload.claim(job)
    assert StagedUpload.objects.get(pk=upload_id).claimed_by_job_id is None


@pytest.mark.parametrize("rounds", [12])
def test_claims_racing_the_sweep_never_lose_a_claimed_upload(
    api: UploadsApi, config: Config, speech_wav: bytes, rounds: int
) -> None:
    """Uploads at the edge of expiry are submitted while the sweep runs: each one is either
    claimed (and kept, object included) or deleted (and its job refused), never both."""
    ids = [stage(api, speech_wav) for _ in range(rounds)]
    edge = timezone.now() + timedelta(milliseconds=300)
    StagedUpload.objects.filter(pk__in=ids).update(expires_at=edge)
    outcomes: dict[str, int] = {}
    start = threading.Barrier(2)

    def submit_all() -> None:
        start.wait()
        try:
            for upload_id in ids:
                outcomes[upload_id] = api.submit(upload_id).status_code
        finally:
            close_old_connections()

    def sweep_repeatedly() -> None:
        start.wait()
        try:
            while len(outcomes) < len(ids):
                sweep_uploads(config)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=submit_all), threading.Thread(target=sweep_repeatedly)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    sweep_uploads(config, now=edge + timedelta(seconds=1))

    keys = staged(config)
    for upload_id in ids:
        row = StagedUpload.objects.filter(pk=upload_id).first()
        if outcomes[upload_id] == 201:
            assert row is not None and row.claimed_by_job_id is not None, upload_id
            assert any(upload_id in key for key in keys), upload_id
        else:
            assert outcomes[upload_id] == 400, outcomes
            assert row is None, upload_id
            assert not any(upload_id in key for key in keys), upload_id
    assert Job.objects.count() == sum(code == 201 for code in outcomes.values())

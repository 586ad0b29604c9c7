"""DELETE /v1/jobs/<id> in-process, on the filesystem store and on a real S3 server: nothing of
the job is left in any store (checked by listing the store), its upload is settled, and an
unfinished job is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models.signals import pre_delete, pre_save
from django.test import Client
from django.utils import timezone

from tests.conftest import OTHER_PRODUCER_TOKEN, PRODUCER_TOKEN
from tests.jobs.conftest import JobsApi, job_body
from tests.jobs.test_views import succeed
from tests.s3server import S3Server
from tests.stores import leave_interrupted_write, list_keys
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.errors import NotFound
from voxhelm.jobs.corrections import Correction, correct
from voxhelm.jobs.deletion import LEFTOVER_GRACE, discard_if_deleted, sweep_leftovers
from voxhelm.jobs.models import Job, LeftoverTree
from voxhelm.jobs.staged import checkpoints_of
from voxhelm.storage.filesystem import FilesystemStore
from voxhelm.storage.keys import checkpoint_prefix, job_prefix
from voxhelm.storage.stores import active_store
from voxhelm.studio.models import TranscriptRevision
from voxhelm.uploads.models import StagedUpload

PREFIX = "studio"
AUTH = {"Authorization": f"Bearer {PRODUCER_TOKEN}"}


@pytest.fixture(params=["filesystem", "s3"])
def config(request: pytest.FixtureRequest, configure: Callable[..., Config]) -> Config:
    store: dict[str, str] = {}
    if request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        store = s3.env(s3.new_bucket(), prefix=PREFIX)
    return configure(
        VOXHELM_ALLOWED_URL_HOSTS="media.example.com",
        **{"VOXHELM_ARTIFACT_PREFIX": PREFIX, **store},
    )


@pytest.fixture
def api(client: Client, config: Config, transactional_db: None) -> JobsApi:
    return JobsApi(client)


def delete(api: JobsApi, job_id: Any, token: str = PRODUCER_TOKEN) -> Any:
    return api.client.delete(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})


def everything_of(config: Config, job_id: Any) -> list[str]:
    """Every object the job has in the active store: artifacts, leftovers, checkpoints."""
    return list_keys(config, job_prefix(PREFIX, job_id)) + list_keys(
        config, checkpoint_prefix(PREFIX, job_id)
    )


def new_job(api: JobsApi, **fields: Any) -> Job:
    return Job.objects.get(pk=api.submit(job_body(**fields)).json()["id"])


def test_it_deletes_a_succeeded_job_and_every_object_it_stored(
    api: JobsApi, config: Config
) -> None:
    job = new_job(api, task_ref="ep-1")
    keep = new_job(api, task_ref="ep-2")
    succeed(job, config)
    succeed(keep, config)
    checkpoints_of(job, config).save_checkpoint("chunk-0000.json", b"{}")
    leave_interrupted_write(config, job_prefix(PREFIX, job.pk))
    assert len(everything_of(config, job.pk)) == 5  # 3 artifacts, a half write, a checkpoint

    response = delete(api, job.pk)
    assert response.status_code == 200, response.content
    assert response.json() == {"id": str(job.pk), "object": "job.deleted", "deleted": True}
    assert everything_of(config, job.pk) == []
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not JobArtifact.objects.filter(job_id=job.pk).exists()
    assert api.get(job.pk).status_code == 404
    assert delete(api, job.pk).status_code == 404
    # The other job is untouched.
    assert len(list_keys(config, job_prefix(PREFIX, keep.pk))) == 3
    assert api.artifact(keep.pk, "transcript.txt").status_code == 200


@pytest.mark.parametrize("state", ["queued", "running"])
def test_an_unfinished_job_must_be_canceled_first(api: JobsApi, config: Config, state: str) -> None:
    job = new_job(api)
    if state == "running":
        assert job.mark_running("test:1")
    response = delete(api, job.pk)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "job_not_finished"
    assert error["message"] == f"The job is {state}: cancel it first, then delete it."
    assert api.cancel(job.pk).status_code == 200
    assert delete(api, job.pk).status_code == 200


def test_another_producer_cannot_delete_it(api: JobsApi, config: Config) -> None:
    job = new_job(api)
    job.cancel()
    assert delete(api, job.pk, token=OTHER_PRODUCER_TOKEN).status_code == 404
    assert Job.objects.filter(pk=job.pk).exists()


def stage(client: Client, name: str = "episode.wav") -> str:
    upload = SimpleUploadedFile(name, b"RIFF" + b"\x01" * 4096, content_type="audio/wav")
    response = client.post("/v1/uploads", {"file": upload}, headers=AUTH)
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_a_failed_jobs_upload_is_released_for_a_new_job(api: JobsApi, config: Config) -> None:
    upload_id = stage(api.client)
    job = new_job(api, input={"kind": "upload", "upload_id": upload_id})
    assert job.mark_running("test:1") and job.mark_failed("unsupported_media", "Not audio.")
    assert delete(api, job.pk).status_code == 200
    upload = StagedUpload.objects.get(pk=upload_id)
    assert upload.claimed_by_job is None
    assert list_keys(config, f"{PREFIX}/staged-inputs/{upload_id}") != []
    again = api.submit(job_body(input={"kind": "upload", "upload_id": upload_id}))
    assert again.status_code == 201, again.content


def test_a_succeeded_jobs_upload_is_deleted_with_it(api: JobsApi, config: Config) -> None:
    upload_id = stage(api.client)
    job = new_job(api, input={"kind": "upload", "upload_id": upload_id})
    succeed(job, config)
    assert delete(api, job.pk).status_code == 200
    assert not StagedUpload.objects.filter(pk=upload_id).exists()
    assert list_keys(config, f"{PREFIX}/staged-inputs/{upload_id}") == []


def test_objects_in_another_store_go_too(
    api: JobsApi,
    config: Config,
    configure: Callable[..., Config],
    settings: Any,
    tmp_path: Path,
) -> None:
    """An artifact written before the store changed, and a remote attempt's objects in the
    store its lease named, are deleted where they are."""
    old_root = tmp_path / "old-store"
    old = configure(
        VOXHELM_ALLOWED_URL_HOSTS="media.example.com",
        VOXHELM_ARTIFACT_ROOT=str(old_root),
        VOXHELM_ARTIFACT_PREFIX=PREFIX,
    )
    job = new_job(api)
    succeed(job, old)
    # Leased when the key prefix was another one: the lease's prefix says where.
    remote = FilesystemStore(tmp_path / "remote-store", prefix="before")
    attempt = f"{job_prefix('before', job.pk)}/attempt-1/"
    remote.put_bytes(f"{attempt}transcript.vtt", b"WEBVTT\n", "text/vtt")
    Job.objects.filter(pk=job.pk).update(
        leased_artifact_prefix=attempt, leased_artifact_store=remote.identity()
    )
    settings.VOXHELM = config  # back to the store under test
    assert delete(api, job.pk).status_code == 200
    assert [p for p in old_root.rglob("*") if p.is_file()] == []
    assert [p for p in (tmp_path / "remote-store").rglob("*") if p.is_file()] == []


def test_what_a_canceled_attempt_writes_after_the_deletion_is_discarded(
    api: JobsApi, config: Config
) -> None:
    """The attempt stops at its next checkpoint; a write before that lands after the job is
    gone, and the attempt's exit removes it."""
    job = new_job(api)
    assert job.mark_running("test:1") and job.cancel()
    assert delete(api, job.pk).status_code == 200
    active_store(config.artifacts).put_bytes(
        f"{job_prefix(PREFIX, job.pk)}/transcript.txt", b"late", "text/plain"
    )
    checkpoints_of(job, config).save_checkpoint("chunk-0001.json", b"{}")
    assert len(everything_of(config, job.pk)) == 2
    assert discard_if_deleted(job, config) is True
    assert everything_of(config, job.pk) == []
    kept = new_job(api)
    assert discard_if_deleted(kept, config) is False


def test_a_write_between_the_objects_and_the_row_is_discarded(api: JobsApi, config: Config) -> None:
    """A canceled attempt that writes after the objects went and ends before the row goes
    sees the job as deleted: the row is marked before any object is deleted."""
    job = new_job(api)
    assert job.mark_running("test:1") and job.cancel()
    discarded: list[bool] = []

    def late_writer(sender: type[Job], instance: Job, **kwargs: Any) -> None:
        # Runs when the objects are gone and the row is about to go: the writer's window.
        active_store(config.artifacts).put_bytes(
            f"{job_prefix(PREFIX, instance.pk)}/transcript.txt", b"late", "text/plain"
        )
        discarded.append(discard_if_deleted(instance, config))

    pre_delete.connect(late_writer, sender=Job)
    try:
        assert delete(api, job.pk).status_code == 200
    finally:
        pre_delete.disconnect(late_writer, sender=Job)
    assert discarded == [True]
    assert everything_of(config, job.pk) == []


def test_a_job_whose_transcript_is_being_corrected_is_not_deleted(
    api: JobsApi, config: Config
) -> None:
    job = new_job(api)
    succeed(job, config)
    token = TranscriptRevision.take(job.pk)
    assert token is not None
    response = delete(api, job.pk)
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "transcript_busy"
    job.refresh_from_db()
    assert job.deleting_at is None  # the correction may go on: nothing was marked or deleted
    assert len(everything_of(config, job.pk)) == 3
    TranscriptRevision.release(job.pk, token, saved=False)
    assert delete(api, job.pk).status_code == 200
    assert everything_of(config, job.pk) == []


def test_a_correction_of_a_job_being_deleted_writes_nothing(api: JobsApi, config: Config) -> None:
    job = new_job(api)
    succeed(job, config)
    Job.objects.filter(pk=job.pk).update(deleting_at=timezone.now())  # a deletion has begun
    before = sorted(everything_of(config, job.pk))
    with pytest.raises(NotFound):
        correct(job, Correction(texts={0: "changed"}), config)
    assert sorted(everything_of(config, job.pk)) == before
    assert not TranscriptRevision.held(job.pk)


def test_a_job_deleted_just_before_its_correction_is_a_404(api: JobsApi, config: Config) -> None:
    job = new_job(api)
    succeed(job, config)

    def concurrent_delete(sender: type[TranscriptRevision], **kwargs: Any) -> None:
        # A DELETE that lands after the correction found the job, before it takes the lease.
        Job.objects.filter(pk=job.pk).delete()

    pre_save.connect(concurrent_delete, sender=TranscriptRevision)
    try:
        with pytest.raises(NotFound):
            correct(job, Correction(texts={0: "changed"}), config)
    finally:
        pre_save.disconnect(concurrent_delete, sender=TranscriptRevision)


def test_a_canceled_remote_attempts_later_objects_are_swept(
    api: JobsApi, config: Config, tmp_path: Path
) -> None:
    """The remote worker writes to the store itself until its next heartbeat is refused; its
    folder is removed once its lease has run out."""
    job = new_job(api)
    succeed(job, config)
    remote = FilesystemStore(tmp_path / "remote-store", prefix=PREFIX)
    attempt = f"{job_prefix(PREFIX, job.pk)}/attempt-1/"
    expires = timezone.now() + timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(
        leased_artifact_prefix=attempt,
        leased_artifact_store=remote.identity(),
        lease_expires_at=expires,
    )
    assert delete(api, job.pk).status_code == 200
    # Written after the deletion: an artifact, and a checkpoint where the lease said.
    remote.put_bytes(f"{attempt}transcript.vtt", b"WEBVTT\n", "text/vtt")
    remote.put_bytes(f"{checkpoint_prefix(PREFIX, job.pk)}/chunk-0002.json", b"{}", "text/plain")
    assert sweep_leftovers(config) == 0  # the lease still runs: the worker may write more
    assert sweep_leftovers(config, expires + LEFTOVER_GRACE) == 2
    assert [p for p in (tmp_path / "remote-store").rglob("*") if p.is_file()] == []
    assert not LeftoverTree.objects.exists()

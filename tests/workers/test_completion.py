"""Lease heartbeats, completion (manifest checks, metadata, retries), failure and expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.jobs.conftest import JobsApi, job_body
from tests.jobs.test_views import body_of
from tests.workers.conftest import WorkerApi, completion, entry, upload_results
from tests.workers.test_claim import error, submit
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobState
from voxhelm.storage.stores import store_for_identity
from voxhelm.workers import leases
from voxhelm.workers.models import Worker


def claim(worker: WorkerApi) -> dict[str, Any]:
    response = worker.claim()
    assert response.status_code == 200, response.content
    return dict(response.json()["job"])


def expire(job_id: str) -> None:
    """Let the lease run out (the clock is moved by rewriting the expiry)."""
    Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def leased(worker: WorkerApi, jobs: JobsApi) -> dict[str, Any]:
    submit(jobs)
    return claim(worker)


def test_it_extends_a_lease_and_keeps_progress(worker: WorkerApi, leased: dict[str, Any]) -> None:
    before = Job.objects.get(pk=leased["id"]).lease_expires_at
    response = worker.beat(
        leased["id"],
        lease_token=leased["lease_token"],
        progress={
            "phase": "transcribing",
            "percent": 40,
            "eta_seconds": 12.34,
            "message": " " + "x" * 500 + " ",
            "extra": [1],
        },
    )
    assert response.status_code == 200
    assert response.json()["job_id"] == leased["id"]
    job = Job.objects.get(pk=leased["id"])
    assert job.lease_expires_at is not None and before is not None
    assert job.lease_expires_at > before
    assert (job.phase, job.progress) == ("transcribing", 40)
    assert set(job.worker_progress) == {"phase", "message", "percent", "eta_seconds"}
    assert job.worker_progress["message"] == "x" * 500
    producer_view = JobsApi(worker.client).get(leased["id"]).json()
    assert producer_view["progress"] == {
        "percent": 40,
        "phase": "transcribing",
        "eta_seconds": 12.3,
    }


@pytest.mark.parametrize(
    ("progress", "message"),
    [
        ({"message": "x" * 501}, "progress.message must be at most 500 characters."),
        ({"phase": "p" * 33}, "progress.phase must be at most 32 characters."),
        ({"phase": "transcribing\nFORGED"}, "progress.phase must not contain control characters."),
    ],
)
def test_progress_over_its_limits_is_refused_and_not_stored(
    worker: WorkerApi, leased: dict[str, Any], progress: dict[str, Any], message: str
) -> None:
    response = worker.beat(leased["id"], lease_token=leased["lease_token"], progress=progress)
    assert (response.status_code, error(response)) == (400, message)
    assert Job.objects.get(pk=leased["id"]).worker_progress == {}


@pytest.mark.parametrize("token", ["", "  ", 5, None])
def test_it_requires_a_lease_token(worker: WorkerApi, leased: dict[str, Any], token: Any) -> None:
    response = worker.beat(leased["id"], lease_token=token)
    assert (response.status_code, error(response)) == (
        400,
        "lease_token must be a non-empty string.",
    )


def test_it_refuses_beats_of_a_wrong_token_or_an_expired_lease(
    worker: WorkerApi, other_worker: WorkerApi, leased: dict[str, Any]
) -> None:
    wrong = worker.beat(leased["id"], lease_token="not-the-token")
    assert wrong.status_code == 409
    assert error(wrong) == "The job is not leased to this worker with the current lease token."
    assert other_worker.beat(leased["id"], lease_token=leased["lease_token"]).status_code == 409
    expire(leased["id"])
    # An expired lease is never revived, even when nobody else took the job yet.
    assert worker.beat(leased["id"], lease_token=leased["lease_token"]).status_code == 409


def test_it_completes_a_job_with_a_verified_manifest(
    worker: WorkerApi, jobs: JobsApi, leased: dict[str, Any], remote_config: Config
) -> None:
    manifest = upload_results(remote_config, leased)
    body = completion(leased, manifest)
    body["result_metadata"].update(
        source_url="https://cdn.example.com/redirected.mp3",
        model="https://evil.example.com/model",
        processing_seconds=-1,
        nested={"a": 1},
        language="en",
    )
    response = worker.complete(leased["id"], **body)
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["state"] == "succeeded"
    assert result["result"]["text"] == "Hello there."
    assert result["result"]["metadata"] == {
        "backend": "fasterwhisper",
        "language": "en",
        "duration_seconds": 1.25,
        "requested_model": "auto",
        "source_kind": "url",
        "source_url": "https://media.example.com/episode.mp3",
        "worker_id": "atlas",
        "attempt": 1,
        "execution_mode": "remote_pull",
    }
    assert set(result["result"]["artifacts"]) == {"text", "json"}
    download = jobs.artifact(leased["id"], "transcript.txt")
    assert body_of(download) == b"text: Hello there."
    rows = JobArtifact.objects.filter(job_id=leased["id"])
    assert {row.storage_key for row in rows} == {item["storage_key"] for item in manifest}
    assert all(row.storage_identity == leased["artifact_store"] for row in rows)
    # The completed transcript is searchable (this fake transcript.json is not JSON: the
    # job's text is indexed instead).
    found = jobs.client.get("/v1/search?q=hello", headers={"Authorization": "Bearer test-token"})
    assert [hit["job_id"] for hit in found.json()["data"]] == [leased["id"]]


def test_it_accepts_its_own_completion_again_but_not_a_different_one(
    worker: WorkerApi, leased: dict[str, Any], remote_config: Config
) -> None:
    manifest = upload_results(remote_config, leased)
    body = completion(leased, manifest)
    assert worker.complete(leased["id"], **body).status_code == 200
    again = worker.complete(leased["id"], **body)
    assert again.status_code == 200
    changed = worker.complete(leased["id"], **{**body, "result_text": "Something else."})
    assert changed.status_code == 409
    assert error(changed) == "Completion retry conflicts with the already committed result."


def test_it_reports_404_for_unknown_jobs(worker: WorkerApi, leased: dict[str, Any]) -> None:
    import uuid

    response = worker.complete(uuid.uuid4(), **completion(leased, [{"name": "x"}]))
    assert response.status_code in (400, 404)
    response = worker.fail(uuid.uuid4(), lease_token="t", retryable=False, error_detail="x")
    assert (response.status_code, error(response)) == (404, "Job not found.")


def _manifest_case(case: str, leased: dict[str, Any], manifest: list[dict[str, Any]]) -> None:
    text = next(item for item in manifest if item["name"] == "transcript.txt")
    if case == "outside_prefix":
        text["storage_key"] = text["storage_key"].replace("attempt-1", "attempt-9")
    elif case == "dotdot":
        text["storage_key"] = f"{leased['artifact_prefix']}../attempt-0/transcript.txt"
    elif case == "prefix_only":
        text["storage_key"] = leased["artifact_prefix"]
    elif case == "mime":
        text["content_type"] = "text/html"
    elif case == "name":
        text["name"] = "../transcript.txt"
    elif case == "kind":
        text["kind"] = "transcript_html"
    elif case == "backend":
        text["storage_backend"] = "s3"
    elif case == "exposed_source":
        manifest[0]["exposed"] = True
    elif case == "no_source":
        manifest.pop(0)
    elif case == "missing_format":
        manifest.remove(text)
    elif case == "sidecar":
        manifest.append(
            entry(
                leased,
                "transcript.speakers.json",
                b"{}",
                "transcript_speakers",
                "speakers",
                "application/json",
            )
        )
    elif case == "duplicate":
        manifest.append(dict(text))


MANIFEST_CASES = {
    "outside_prefix": "Artifact storage_key must be under the claimed attempt prefix.",
    "dotdot": "Artifact storage_key must be under the claimed attempt prefix.",
    "prefix_only": "Artifact storage_key must be under the claimed attempt prefix.",
    "mime": "Artifact transcript.txt content_type must be text/plain; charset=utf-8.",
    "name": "Artifact names must be simple file names.",
    "kind": "Unsupported remote artifact kind 'transcript_html'.",
    "backend": "Artifact storage_backend does not match Voxhelm configuration.",
    "exposed_source": "Artifact source.mp3 must not be exposed.",
    "no_source": "Remote completions must include a source artifact.",
    "missing_format": "Missing transcript artifact format(s): text.",
    "sidecar": "Speaker sidecar artifacts are only allowed for known-speaker jobs.",
    "duplicate": "Duplicate artifact name 'transcript.txt'.",
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_it_refuses_bad_manifests_and_keeps_the_job_running(
    worker: WorkerApi, leased: dict[str, Any], remote_config: Config, case: str
) -> None:
    manifest = upload_results(remote_config, leased)
    _manifest_case(case, leased, manifest)
    response = worker.complete(leased["id"], **completion(leased, manifest))
    assert (response.status_code, error(response)) == (400, MANIFEST_CASES[case])
    job = Job.objects.get(pk=leased["id"])
    assert job.state == JobState.RUNNING
    assert not JobArtifact.objects.filter(job=job).exists()


def test_it_reads_every_object_back_before_accepting_it(
    worker: WorkerApi, leased: dict[str, Any], remote_config: Config
) -> None:
    manifest = upload_results(remote_config, leased)
    store = store_for_identity(leased["artifact_store"], remote_config.artifacts)
    text = next(item for item in manifest if item["name"] == "transcript.txt")
    original = b"text: Hello there."
    # Same size, other bytes: the reference (size only) accepted this.
    store.put_bytes(text["storage_key"], original.upper(), "text/plain")
    response = worker.complete(leased["id"], **completion(leased, manifest))
    assert error(response) == "Artifact object 'transcript.txt' sha256 does not match the manifest."
    store.put_bytes(text["storage_key"], original + b"!", "text/plain")
    response = worker.complete(leased["id"], **completion(leased, manifest))
    assert (
        error(response)
        == "Artifact object 'transcript.txt' size_bytes does not match the manifest."
    )
    store.delete(text["storage_key"])
    response = worker.complete(leased["id"], **completion(leased, manifest))
    assert error(response) == (
        "Artifact object 'transcript.txt' is not available in the artifact store."
    )
    assert Job.objects.get(pk=leased["id"]).state == JobState.RUNNING
    store.put_bytes(text["storage_key"], original, "text/plain")
    assert worker.complete(leased["id"], **completion(leased, manifest)).status_code == 200


def test_it_accepts_an_empty_transcript(
    worker: WorkerApi, leased: dict[str, Any], remote_config: Config
) -> None:
    manifest = upload_results(remote_config, leased, text="")
    response = worker.complete(leased["id"], **completion(leased, manifest, text=""))
    assert response.status_code == 200
    assert "text" not in response.json()["result"]


def test_it_accepts_the_text_of_a_long_recording(
    worker: WorkerApi, leased: dict[str, Any], remote_config: Config
) -> None:
    """About 60 hours of speech: more than Django's 2.5 MB default for a request's data."""
    text = "word " * 700_000
    manifest = upload_results(remote_config, leased, text=text)
    response = worker.complete(leased["id"], **completion(leased, manifest, text=text))
    assert response.status_code == 200, response.content[:300]
    assert len(response.json()["result"]["text"]) == len(text)


def test_it_refuses_a_zombie_completion_after_the_job_was_claimed_again(
    worker: WorkerApi, other_worker: WorkerApi, leased: dict[str, Any], remote_config: Config
) -> None:
    zombie_manifest = upload_results(remote_config, leased, text="zombie")
    expire(leased["id"])
    second = claim(other_worker)
    assert (second["id"], second["attempt"]) == (leased["id"], 2)
    assert second["artifact_prefix"].endswith("/attempt-2/")
    zombie = worker.complete(leased["id"], **completion(leased, zombie_manifest, text="zombie"))
    assert zombie.status_code == 409
    winner = worker_complete(other_worker, second, remote_config)
    assert winner["result"]["text"] == "winner"
    rows = JobArtifact.objects.filter(job_id=leased["id"])
    assert all("/attempt-2/" in row.storage_key for row in rows)
    assert rows.count() == 3
    # The lost attempt's objects are gone from the store.
    store = store_for_identity(leased["artifact_store"], remote_config.artifacts)
    with pytest.raises(Exception, match="No artifact object"):
        store.stat(zombie_manifest[1]["storage_key"])


def worker_complete(worker: WorkerApi, job: dict[str, Any], config: Config) -> dict[str, Any]:
    manifest = upload_results(config, job, text="winner")
    response = worker.complete(job["id"], **completion(job, manifest, text="winner"))
    assert response.status_code == 200, response.content
    return dict(response.json())


def test_a_disabled_worker_may_still_finish_its_lease(
    worker: WorkerApi, leased: dict[str, Any], remote_config: Config
) -> None:
    Worker.objects.filter(pk="atlas").update(enabled=False)
    assert worker.beat(leased["id"], lease_token=leased["lease_token"]).status_code == 200
    assert worker_complete(worker, leased, remote_config)["state"] == "succeeded"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"retryable": "yes", "error_detail": "x"}, "retryable must be a boolean."),
        ({"retryable": True, "error_detail": " "}, "error_detail must be a non-empty string."),
        (
            {"retryable": True, "error_detail": "x" * 2001},
            "error_detail must be at most 2000 characters.",
        ),
        (
            {"retryable": True, "error_detail": "x", "error_code": "c" * 65},
            "error_code must be at most 64 characters.",
        ),
    ],
)
def test_it_validates_failure_reports(
    worker: WorkerApi, leased: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    response = worker.fail(leased["id"], lease_token=leased["lease_token"], **body)
    assert (response.status_code, error(response)) == (400, message)


def test_a_retryable_failure_requeues_until_attempts_run_out(
    worker: WorkerApi, jobs: JobsApi
) -> None:
    job_id = submit(jobs)
    for attempt in (1, 2):
        leased = claim(worker)
        assert (leased["id"], leased["attempt"]) == (job_id, attempt)
        assert leased["artifact_prefix"].endswith(f"/attempt-{attempt}/")
        response = worker.fail(
            job_id, lease_token=leased["lease_token"], retryable=True, error_detail="GPU hiccup"
        )
        assert response.status_code == 200
        assert response.json()["state"] == "queued"
        assert "error" not in response.json()
        job = Job.objects.get(pk=job_id)
        assert (job.assigned_worker_id, job.lease_token_hash, job.leased_artifact_prefix) == (
            "",
            "",
            "",
        )
    last = claim(worker)
    assert last["attempt"] == 3
    response = worker.fail(
        job_id, lease_token=last["lease_token"], retryable=True, error_detail="GPU hiccup"
    )
    assert response.json()["state"] == "failed"
    assert response.json()["error"]["message"] == "Remote worker reported a terminal failure."
    assert worker.claim().status_code == 204


def test_a_terminal_failure_shows_the_workers_client_safe_message(
    worker: WorkerApi, leased: dict[str, Any]
) -> None:
    response = worker.fail(
        leased["id"],
        lease_token=leased["lease_token"],
        retryable=False,
        error_detail="The media could not be decoded.",
        error_code="unsupported_media",
    )
    body = response.json()
    assert body["state"] == "failed"
    assert body["error"] == {
        "message": "Remote worker reported a terminal failure. The media could not be decoded.",
        "code": "unsupported_media",
    }
    stale = worker.fail(
        leased["id"], lease_token=leased["lease_token"], retryable=False, error_detail="again"
    )
    assert stale.status_code == 409


def test_the_sweeper_requeues_expired_leases_and_fails_exhausted_ones(
    worker: WorkerApi, jobs: JobsApi, remote_config: Config
) -> None:
    job_id = submit(jobs)
    for attempt in (1, 2, 3):
        leased = claim(worker)
        assert leased["attempt"] == attempt
        expire(job_id)
        report = leases.sweep(remote_config)
        if attempt < 3:
            assert report.requeued == [leased_id(job_id)]
            assert Job.objects.get(pk=job_id).state == JobState.QUEUED
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.attempt_count) == (JobState.FAILED, 3)
    assert job.error_detail == "Remote worker lease expired after maximum attempts."
    assert jobs.get(job_id).json()["error"]["message"] == job.error_detail
    assert worker.claim().status_code == 204


def leased_id(job_id: str) -> Any:
    import uuid

    return uuid.UUID(job_id)


def test_the_sweeper_leaves_extended_leases_alone(
    worker: WorkerApi, leased: dict[str, Any], remote_config: Config
) -> None:
    Job.objects.filter(pk=leased["id"]).update(
        lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    assert leases.sweep(remote_config).requeued == []
    assert Job.objects.get(pk=leased["id"]).state == JobState.RUNNING


def test_a_canceled_job_refuses_its_worker(
    worker: WorkerApi, jobs: JobsApi, leased: dict[str, Any], remote_config: Config
) -> None:
    assert jobs.cancel(leased["id"]).status_code == 200
    assert worker.beat(leased["id"], lease_token=leased["lease_token"]).status_code == 409
    manifest = upload_results(remote_config, leased)
    assert worker.complete(leased["id"], **completion(leased, manifest)).status_code == 409


def test_task_ref_retries_find_the_remote_job(jobs: JobsApi) -> None:
    first = jobs.submit(job_body(task_ref="ep-7"))
    again = jobs.submit(job_body(task_ref="ep-7"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_a_known_speaker_completion_keeps_only_the_sanitized_summary(
    worker: WorkerApi, jobs: JobsApi, remote_config: Config
) -> None:
    reference = "https://media.example.com/refs/johannes.wav"
    submit(
        jobs,
        diarization={
            "enabled": True,
            "strategy": "pyannote_known_speaker",
            "known_speakers": [
                {
                    "id": "jo",
                    "name": "Johannes",
                    "references": [
                        {"kind": "clip_artifact", "audio": {"kind": "url", "url": reference}}
                    ],
                }
            ],
        },
    )
    leased = claim(worker)
    assert leased["output"]["diarization"]["known_speakers"][0]["references"][0]["audio"] == {
        "kind": "url",
        "url": reference,
    }
    manifest = upload_results(remote_config, leased)
    missing = worker.complete(leased["id"], **completion(leased, manifest))
    assert error(missing) == "Known-speaker jobs must include transcript.speakers.json."
    sidecar = b'{"version": 1}'
    store_for_identity(leased["artifact_store"], remote_config.artifacts).put_bytes(
        f"{leased['artifact_prefix']}transcript.speakers.json", sidecar, "application/json"
    )
    manifest.append(
        entry(
            leased,
            "transcript.speakers.json",
            sidecar,
            "transcript_speakers",
            "speakers",
            "application/json",
        )
    )
    body = completion(leased, manifest)
    no_summary = worker.complete(leased["id"], **body)
    assert no_summary.status_code == 400
    assert "known_speaker_summary" in error(no_summary)
    body["result_metadata"]["diarization"] = {
        "known_speaker_summary": {
            "segment_count": 2,
            "confident_speaker_distribution": {"Johannes": 2, "Eve": 1},
            "reference_url": reference,
        }
    }
    response = worker.complete(leased["id"], **body)
    assert response.status_code == 200, response.content
    metadata = response.json()["result"]["metadata"]
    assert metadata["diarization"] == {
        "enabled": True,
        "strategy": "pyannote_known_speaker",
        "known_speakers": [{"id": "jo", "name": "Johannes", "reference_count": 1}],
        "known_speaker_summary": {
            "segment_count": 2,
            "confident_speaker_distribution": {"Johannes": 2},
        },
    }
    assert "refs" not in str(metadata)
    assert "speakers" in response.json()["result"]["artifacts"]

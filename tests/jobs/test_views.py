"""GET /v1/jobs/<id>, POST /v1/jobs/<id>/cancel, GET /v1/jobs/<id>/artifacts/<name>."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from tests.jobs.conftest import JobsApi, job_body
from tests.jobs.test_submit import error_of
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobState


@pytest.fixture
def job(api: JobsApi) -> Job:
    return Job.objects.get(pk=api.submit(job_body(task_ref="ep-1")).json()["id"])


def succeed(job: Job, config: Config) -> None:
    """Give ``job`` the artifacts and result of a finished run."""
    assert job.mark_running("test:1")
    put = JobArtifact.objects.put
    put(
        job,
        "source.mp3",
        kind="source",
        format="",
        content_type="audio/mpeg",
        exposed=False,
        data=b"ID3 media",
        config=config.artifacts,
    )
    put(
        job,
        "transcript.txt",
        kind="transcript_text",
        format="text",
        content_type="text/plain; charset=utf-8",
        exposed=True,
        data="Grüße".encode(),
        config=config.artifacts,
    )
    put(
        job,
        "transcript.json",
        kind="transcript_json",
        format="json",
        content_type="application/json",
        exposed=True,
        data=b'{"text": "x"}',
        config=config.artifacts,
    )
    assert job.mark_succeeded("Grüße", {"backend": "fasterwhisper", "model": "tiny.en"})


def body_of(response: Any) -> bytes:
    """The body of a streamed response (an async iterator, as under ASGI)."""

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return asyncio.run(read())


def test_it_shows_a_queued_job(api: JobsApi, job: Job) -> None:
    response = api.get(job.pk)
    assert response.status_code == 200
    assert response.json() == {
        "id": str(job.pk),
        "object": "job",
        "state": "queued",
        "job_type": "transcribe",
        "created_at": job.created_at.isoformat().replace("+00:00", "Z"),
        "started_at": None,
        "finished_at": None,
        "task_ref": "ep-1",
        "progress": {"percent": 0, "phase": None, "eta_seconds": None},
    }


def test_it_shows_progress_of_a_running_job(api: JobsApi, job: Job) -> None:
    assert job.mark_running("test:1")
    assert job.set_progress(15, "transcribing", 42.5)
    body = api.get(job.pk).json()
    assert body["state"] == "running"
    assert body["progress"] == {"percent": 15, "phase": "transcribing", "eta_seconds": 42.5}
    assert body["started_at"].endswith("Z")


def test_it_shows_a_failed_job_with_its_error(api: JobsApi, job: Job) -> None:
    assert job.mark_running("test:1")
    assert job.mark_failed("url_not_allowed", "URL host is not in the configured allowlist.")
    body = api.get(job.pk).json()
    assert body["state"] == "failed"
    assert body["error"] == {
        "message": "URL host is not in the configured allowlist.",
        "code": "url_not_allowed",
    }
    assert "result" not in body
    assert body["finished_at"].endswith("Z")


def test_it_shows_a_succeeded_job_with_exposed_artifacts_only(
    api: JobsApi, job: Job, jobs_config: Config
) -> None:
    succeed(job, jobs_config)
    body = api.get(job.pk).json()
    assert body["state"] == "succeeded"
    assert body["progress"] == {"percent": 100, "phase": None, "eta_seconds": None}
    assert body["result"] == {
        "artifacts": {
            "json": f"/v1/jobs/{job.pk}/artifacts/transcript.json",
            "text": f"/v1/jobs/{job.pk}/artifacts/transcript.txt",
        },
        "metadata": {"backend": "fasterwhisper", "model": "tiny.en"},
        "text": "Grüße",
    }
    assert "error" not in body


def test_it_streams_an_artifact_with_its_stored_type(
    api: JobsApi, job: Job, jobs_config: Config
) -> None:
    succeed(job, jobs_config)
    response = api.artifact(job.pk, "transcript.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Length"] == str(len("Grüße".encode()))
    # Saved under the source's name (the URL's episode.mp3), not as transcript.txt.
    assert response["Content-Disposition"] == 'attachment; filename="episode.txt"'
    assert body_of(response) == "Grüße".encode()


def test_it_reads_artifacts_from_the_store_they_were_written_to(
    api: JobsApi, job: Job, jobs_config: Config, configure: Callable[..., Config], tmp_path: Any
) -> None:
    succeed(job, jobs_config)
    configure(
        VOXHELM_ALLOWED_URL_HOSTS="media.example.com",
        VOXHELM_ARTIFACT_ROOT=str(tmp_path / "moved"),
        VOXHELM_ARTIFACT_PREFIX="",
    )
    assert body_of(api.artifact(job.pk, "transcript.json")) == b'{"text": "x"}'


@pytest.mark.parametrize("name", ["source.mp3", "transcript.vtt", "..", "%2e%2e%2fsecret"])
def test_it_hides_unexposed_and_unknown_artifacts(
    api: JobsApi, job: Job, jobs_config: Config, name: str
) -> None:
    succeed(job, jobs_config)
    assert error_of(api.artifact(job.pk, name), 404)["type"] == "invalid_request_error"


def test_another_producer_sees_neither_the_job_nor_its_artifacts(
    api: JobsApi, job: Job, jobs_config: Config, other_token: str
) -> None:
    succeed(job, jobs_config)
    assert error_of(api.get(job.pk, token=other_token), 404)["code"] == "job_not_found"
    assert error_of(api.artifact(job.pk, "transcript.txt", token=other_token), 404)
    assert error_of(api.cancel(job.pk, token=other_token), 404)
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED


@pytest.mark.parametrize("path", [f"/v1/jobs/{uuid.uuid4()}", "/v1/jobs/not-a-uuid"])
def test_unknown_jobs_are_a_404_envelope(api: JobsApi, path: str) -> None:
    response = api.client.get(path, headers={"Authorization": "Bearer test-token"})
    assert error_of(response, 404)


def test_reading_a_job_needs_a_token(api: JobsApi, job: Job) -> None:
    assert error_of(api.get(job.pk, token=None), 401)["message"] == "Missing bearer token."


def test_it_cancels_a_queued_job(api: JobsApi, job: Job) -> None:
    response = api.cancel(job.pk)
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "canceled"
    assert body["finished_at"].endswith("Z")
    assert "error" not in body and "result" not in body


def test_it_cancels_a_running_job_whose_attempt_then_stops(api: JobsApi, job: Job) -> None:
    assert job.mark_running("test:1")
    attempt = Job.objects.get(pk=job.pk)
    assert api.cancel(job.pk).json()["state"] == "canceled"
    # The attempt's next checkpoint, heartbeat and result are all refused.
    assert not attempt.set_progress(50, "transcribing")
    assert not attempt.beat()
    assert not attempt.mark_succeeded("text", {})
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELED


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED])
def test_canceling_a_finished_job_is_a_conflict(api: JobsApi, job: Job, state: str) -> None:
    Job.objects.filter(pk=job.pk).update(state=state, finished_at=timezone.now())
    error = error_of(api.cancel(job.pk), 409)
    assert error["type"] == "conflict_error"
    assert state in error["message"]
    assert Job.objects.get(pk=job.pk).state == state


def test_the_job_endpoints_are_in_the_openapi_document(api: JobsApi) -> None:
    doc = api.client.get("/v1/openapi.json").json()
    assert set(doc["paths"]["/v1/jobs"]) == {"get", "post"}
    submit = doc["paths"]["/v1/jobs"]["post"]
    schema = submit["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/JobRequest"}
    union = doc["components"]["schemas"]["JobRequest"]["anyOf"]
    assert {entry["$ref"].rsplit("/", 1)[1] for entry in union} == {
        "JobSubmission",
        "SynthesisSubmission",
    }
    assert {"200", "201", "400", "401"} <= set(submit["responses"])
    assert "409" in doc["paths"]["/v1/jobs/{job_id}/cancel"]["post"]["responses"]
    assert "/v1/jobs/{job_id}/artifacts/{name}" in doc["paths"]
    listed = doc["paths"]["/v1/jobs"]["get"]
    assert {p["name"] for p in listed["parameters"]} == {
        "after",
        "limit",
        "state",
        "task_ref",
        "job_type",
        "created_after",
        "created_before",
    }
    page = listed["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/JobList"}
    deleting = doc["paths"]["/v1/jobs/{job_id}"]["delete"]
    assert {"200", "404", "409"} <= set(deleting["responses"])
    deleted = deleting["responses"]["200"]["content"]["application/json"]["schema"]
    assert deleted == {"$ref": "#/components/schemas/JobDeleted"}
    job = doc["components"]["schemas"]["JobOut"]
    assert {"id", "state", "progress", "result", "error"} <= set(job["properties"])

"""Worker auth, request validation, worker heartbeats, disabled workers and claims."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.jobs.conftest import JobsApi, job_body
from tests.workers.conftest import REMOTE_ENV, WorkerApi
from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobState
from voxhelm.workers.models import Worker

ENDPOINTS = [
    "/v1/internal/workers/heartbeat",
    "/v1/internal/work/claim",
    f"/v1/internal/work/{uuid.uuid4()}/heartbeat",
    f"/v1/internal/work/{uuid.uuid4()}/complete",
    f"/v1/internal/work/{uuid.uuid4()}/fail",
]


def error(response: Any) -> str:
    return str(response.json()["error"]["message"])


def submit(jobs: JobsApi, **fields: Any) -> str:
    response = jobs.submit(job_body(**fields))
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


@pytest.mark.parametrize("path", ENDPOINTS)
def test_it_authenticates_workers_before_reading_the_body(worker: WorkerApi, path: str) -> None:
    worker.token = None
    missing = worker.post(path, b"\xff not json", content_type="text/plain")
    assert missing.status_code == 401
    assert error(missing) == "Missing worker bearer token."
    assert missing["WWW-Authenticate"] == "Bearer"
    worker.token = "test-token"  # a producer token: another domain
    producer = worker.post(path, b"\xff")
    assert producer.status_code == 401
    assert error(producer) == "Invalid worker bearer token."


def test_it_refuses_worker_tokens_on_producer_endpoints(jobs: JobsApi) -> None:
    response = jobs.submit(job_body(), token="worker-token")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "context"),
    [
        ("/v1/internal/workers/heartbeat", "Worker heartbeat"),
        ("/v1/internal/work/claim", "Worker claim"),
        (f"/v1/internal/work/{uuid.uuid4()}/heartbeat", "Worker job heartbeat"),
        (f"/v1/internal/work/{uuid.uuid4()}/complete", "Worker job completion"),
        (f"/v1/internal/work/{uuid.uuid4()}/fail", "Worker job failure"),
    ],
)
def test_it_requires_json_objects(worker: WorkerApi, path: str, context: str) -> None:
    form = worker.post(path, "a=1", content_type="application/x-www-form-urlencoded")
    assert (form.status_code, error(form)) == (400, f"{context} requires application/json.")
    bad = worker.post(path, b"\xff\xfe", content_type="application/json")
    assert (bad.status_code, error(bad)) == (400, "Request body was not valid JSON.")
    listed = worker.post(path, [1, 2])
    assert (listed.status_code, error(listed)) == (400, "Request body must be a JSON object.")
    foreign = worker.post(path, {"worker_id": "boreas"})
    assert foreign.status_code == 403
    assert foreign.json()["error"]["type"] == "permission_error"
    assert error(foreign) == "Worker token is not authorized for the requested worker_id."
    null = worker.post(path, {"worker_id": None})
    assert null.status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"concurrency": 0}, "concurrency must be a positive integer."),
        ({"concurrency": True}, "concurrency must be a positive integer."),
        ({"running_job_ids": "x"}, "running_job_ids must be a list."),
        ({"running_job_ids": [1]}, "running_job_ids entries must be strings."),
        ({"capabilities": []}, "capabilities must be an object."),
        ({"hostname": 5}, "Optional worker fields must be strings when provided."),
        ({"capabilities": {"diarization": 1}}, "capabilities.diarization must be an object."),
    ],
)
def test_it_validates_worker_heartbeats(worker: WorkerApi, body: Any, message: str) -> None:
    response = worker.heartbeat(**body)
    assert (response.status_code, error(response)) == (400, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"hostname": "h" * 256}, "hostname must be at most 255 characters."),
        ({"hostname": "box\nFORGED"}, "hostname must not contain control characters."),
        ({"hostname": "box\u202e"}, "hostname must not contain control characters."),
        ({"concurrency": 1025}, "concurrency must be at most 1024."),
        ({"running_job_ids": ["j"] * 1025}, "running_job_ids must have at most 1024 entries."),
        ({"running_job_ids": ["j" * 65]}, "running_job_ids must be at most 64 characters."),
        (
            {"capabilities": {"models": ["m"] * 65}},
            "capabilities.models must have at most 64 entries.",
        ),
        (
            {"capabilities": {"backends": ["b" * 129]}},
            "capabilities.backends must be at most 128 characters.",
        ),
        (
            {"capabilities": {"job_types": ["transcribe\x1b[2J"]}},
            "capabilities.job_types must not contain control characters.",
        ),
        (
            {"capabilities": {"diarization": {"embedding_models": ["e"] * 65}}},
            "capabilities.diarization.embedding_models must have at most 64 entries.",
        ),
    ],
)
def test_it_refuses_heartbeat_fields_over_their_limits_and_stores_nothing(
    worker: WorkerApi, body: Any, message: str
) -> None:
    at_limits = {
        "hostname": "h" * 255,
        "concurrency": 1024,
        "running_job_ids": ["j" * 64] * 1024,
        "capabilities": {"models": ["m" * 128] * 64},
    }
    assert worker.heartbeat(**at_limits).status_code == 200
    stored = Worker.objects.values("hostname", "concurrency", "running_job_ids", "capabilities")
    kept = stored.get(pk="atlas")
    assert kept["capabilities"]["models"] == ["m" * 128] * 64
    response = worker.heartbeat(**{**at_limits, **body})
    assert (response.status_code, error(response)) == (400, message)
    assert stored.get(pk="atlas") == kept


def test_it_records_worker_heartbeats(worker: WorkerApi) -> None:
    response = worker.heartbeat(
        worker_id="atlas",
        hostname=" gpu-box ",
        concurrency=2,
        running_job_ids=["a", " "],
        capabilities=worker.capabilities,
        version="9.9",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["worker_id"] == "atlas"
    assert body["enabled"] is True
    assert body["poll_after_seconds"] == int(REMOTE_ENV["VOXHELM_REMOTE_WORKER_POLL_SECONDS"])
    assert body["server_time"].endswith("Z")
    row = Worker.objects.get(pk="atlas")
    assert (row.hostname, row.concurrency, row.running_job_ids) == ("gpu-box", 2, ["a"])
    assert row.capabilities["backends"] == worker.capabilities["backends"]
    assert row.last_seen_at is not None


def test_it_refuses_disabled_workers_without_touching_them(
    worker: WorkerApi, jobs: JobsApi
) -> None:
    Worker.objects.create(worker_id="atlas", hostname="old", enabled=False)
    submit(jobs)
    beat = worker.heartbeat(hostname="new")
    assert (beat.status_code, error(beat)) == (403, "Worker is disabled.")
    assert Worker.objects.get(pk="atlas").hostname == "old"
    claim = worker.claim()
    assert (claim.status_code, error(claim)) == (403, "Worker is disabled.")
    assert Job.objects.get().state == JobState.QUEUED


def test_it_queues_remote_jobs_without_a_task(jobs: JobsApi) -> None:
    job = Job.objects.get(pk=submit(jobs))
    assert (job.state, job.execution_mode, job.django_task_id) == ("queued", "remote_pull", "")


def test_it_leases_a_job_to_a_capable_worker(
    worker: WorkerApi, jobs: JobsApi, remote_config: Config
) -> None:
    job_id = submit(jobs, model="whisper-1", language="en", output={"formats": ["text", "vtt"]})
    response = worker.claim(worker_id="atlas")
    assert response.status_code == 200
    claimed = response.json()["job"]
    assert claimed["id"] == job_id
    assert claimed["attempt"] == 1
    assert (claimed["backend"], claimed["model"]) == ("fasterwhisper", "tiny.en")
    assert (claimed["requested_backend"], claimed["requested_model"]) == ("auto", "whisper-1")
    assert claimed["language"] == "en"
    assert claimed["input"] == {"kind": "url", "url": "https://media.example.com/episode.mp3"}
    assert claimed["output"] == {"formats": ["text", "vtt"], "diarization": {"enabled": False}}
    assert claimed["artifact_prefix"] == f"voxhelm/jobs/{job_id}/attempt-1/"
    assert claimed["artifact_store"]["backend"] == "filesystem"
    assert len(claimed["lease_token"]) >= 40
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.assigned_worker_id, job.attempt_count) == ("running", "atlas", 1)
    assert claimed["lease_token"] not in job.lease_token_hash  # only the hash is stored
    assert job.leased_artifact_store == claimed["artifact_store"]
    assert job.lease_expires_at is not None and job.started_at is not None


def test_it_gives_a_one_job_worker_one_lease(worker: WorkerApi, jobs: JobsApi) -> None:
    submit(jobs, task_ref="a")
    submit(jobs, task_ref="b")
    assert worker.claim().status_code == 200
    assert worker.claim().status_code == 204
    assert worker.claim(max_jobs=2).status_code == 204  # its concurrency (1) still caps it
    Worker.objects.filter(pk="atlas").update(concurrency=2)
    assert worker.claim(max_jobs=2).status_code == 200


def test_it_claims_high_priority_first_then_oldest(worker: WorkerApi, jobs: JobsApi) -> None:
    first = submit(jobs, task_ref="a", priority="low")
    second = submit(jobs, task_ref="b")
    third = submit(jobs, task_ref="c", priority="high")
    Worker.objects.ensure("atlas")
    Worker.objects.filter(pk="atlas").update(concurrency=3)
    order = [worker.claim(max_jobs=3).json()["job"]["id"] for _ in range(3)]
    assert order == [third, second, first]


@pytest.mark.parametrize(
    "change",
    [
        {"output_formats": ["text"]},  # the job asks for json too
        {"models": ["large-v3"]},
        {"backends": ["whispercpp"]},
        {"job_types": ["synthesize"]},
    ],
)
def test_it_skips_jobs_a_worker_cannot_run(
    worker: WorkerApi, jobs: JobsApi, change: dict[str, Any]
) -> None:
    submit(jobs)
    worker.capabilities = {**worker.capabilities, **change}
    assert worker.claim().status_code == 204
    assert Job.objects.get().state == JobState.QUEUED


def test_it_scans_past_jobs_the_worker_cannot_run(worker: WorkerApi, jobs: JobsApi) -> None:
    for index in range(30):
        submit(jobs, task_ref=f"vtt-{index}", output={"formats": ["vtt"]})
    wanted = submit(jobs, task_ref="text", output={"formats": ["text"]})
    worker.capabilities = {**worker.capabilities, "output_formats": ["text"]}
    assert worker.claim().json()["job"]["id"] == wanted


def test_it_matches_diarization_capabilities(worker: WorkerApi, jobs: JobsApi) -> None:
    submit(jobs, diarization={"enabled": True, "num_speakers": 2})
    no_diarization = {"anonymous": False, "known_speaker": False, "embedding_models": []}
    worker.capabilities = {**worker.capabilities, "diarization": no_diarization}
    assert worker.claim().status_code == 204
    worker.capabilities = {**worker.capabilities, "diarization": {"anonymous": True}}
    claimed = worker.claim().json()["job"]
    assert claimed["output"]["diarization"] == {
        "enabled": True,
        "num_speakers": 2,
        "strategy": "pyannote",
    }


def test_it_fails_a_job_whose_url_is_no_longer_allowed_before_leasing_it(
    worker: WorkerApi, jobs: JobsApi, configure: Any
) -> None:
    job_id = submit(jobs)
    configure(**{**REMOTE_ENV, "VOXHELM_ALLOWED_URL_HOSTS": "elsewhere.example.com"})
    assert worker.claim().status_code == 204
    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.FAILED
    assert "allowlist" in job.error_detail
    assert (job.assigned_worker_id, job.lease_token_hash, job.attempt_count) == ("", "", 0)

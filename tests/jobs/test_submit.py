"""POST /v1/jobs: validation with the reference's messages, the stored job, its task."""

from __future__ import annotations

from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from tests.jobs.conftest import MEDIA_URL, JobsApi, job_body
from voxhelm.jobs.models import Job


def error_of(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_it_creates_a_queued_job_and_its_task(api: JobsApi) -> None:
    response = api.submit(
        job_body(priority="high", task_ref=" item-1 ", context={"episode": 7}, language="en-US")
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "queued"
    assert body["job_type"] == "transcribe"
    assert body["task_ref"] == "item-1"
    assert body["progress"] == {"percent": 0, "phase": None, "eta_seconds": None}
    assert body["created_at"].endswith("Z")
    assert body["started_at"] is None
    assert "result" not in body and "error" not in body
    assert "context" not in response.content.decode() and "episode" not in response.content.decode()

    job = Job.objects.get(pk=body["id"])
    assert (job.producer, job.model, job.backend, job.language) == ("archive", "auto", "auto", "en")
    assert job.input_data == {"kind": "url", "url": MEDIA_URL}
    assert job.output_data == {"formats": ["text", "json"], "diarization": {"enabled": False}}
    assert job.context_data == {"episode": 7}
    assert (job.lane, job.dispatch_mode, job.execution_mode) == ("batch", "batch", "django_tasks")
    assert job.max_attempts == 3
    task = DBTaskResult.objects.get(pk=job.django_task_id)
    assert task.priority == 10
    assert task.args_kwargs == {"args": [str(job.pk)], "kwargs": {}}
    assert task.status == "READY"


@pytest.mark.parametrize(("priority", "task_priority"), [("low", -10), ("normal", 0)])
def test_it_maps_priorities_to_task_priorities(
    api: JobsApi, priority: str, task_priority: int
) -> None:
    job_id = api.submit(job_body(priority=priority)).json()["id"]
    task = DBTaskResult.objects.get(pk=Job.objects.get(pk=job_id).django_task_id)
    assert task.priority == task_priority


def test_it_normalizes_the_requested_formats(api: JobsApi) -> None:
    formats = [" VTT", "webvtt", "SRT", "dote", "Podlove", "text", "json", "text"]
    job_id = api.submit(job_body(output={"formats": formats})).json()["id"]
    assert Job.objects.get(pk=job_id).output_data["formats"] == [
        "vtt",
        "srt",
        "dote",
        "podlove",
        "text",
        "json",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"job_type": None}, "job_type must be a string."),
        (
            {"job_type": "synthesize!"},
            "Unsupported job_type 'synthesize!'. Accepted values: synthesize, transcribe.",
        ),
        ({"priority": "urgent"}, "priority must be one of: high, normal, low."),
        ({"lane": "interactive"}, "Only lane=batch is supported for jobs."),
        ({"backend": "whispercpp"}, "Only backend=auto is supported."),
        ({"model": None}, "model must be a string."),
        ({"model": 3}, "model must be a string."),
        ({"language": 5}, "language must be a string."),
        ({"task_ref": ["x"]}, "task_ref must be a string."),
        ({"task_ref": "x" * 256}, "task_ref must be at most 255 characters."),
        ({"context": "x"}, "context must be an object."),
        ({"input": None}, "input must be an object."),
        ({"input": "https://media.example.com/a.mp3"}, "input must be an object."),
        (
            {"input": {"kind": "upload", "upload_id": "x"}},
            "input.upload_id must be a UUID string.",
        ),
        (
            {"input": {"kind": "file", "path": "/etc/passwd"}},
            "Transcribe jobs support input.kind=url or input.kind=upload.",
        ),
        ({"input": {"kind": "url"}}, "Batch transcription requires input.url."),
        ({"input": {"kind": "url", "url": "  "}}, "Batch transcription requires input.url."),
        ({"input": {"kind": "url", "url": "/episode.mp3"}}, "input.url must be an absolute URL."),
        ({"output": []}, "output must be an object."),
        ({"output": {"formats": []}}, "output.formats must be a non-empty list."),
        ({"output": {"formats": "text"}}, "output.formats must be a non-empty list."),
        (
            {"output": {"formats": ["text", "speakers"]}},
            "Unsupported output format. Use text, json, vtt, srt, dote, or podlove.",
        ),
        (
            {"output": {"formats": [1]}},
            "Unsupported output format. Use text, json, vtt, srt, dote, or podlove.",
        ),
        ({"diarization": "yes"}, "diarization must be an object."),
        ({"diarization": {"enabled": "yes"}}, "diarization.enabled must be a boolean."),
        (
            {"diarization": {"enabled": True, "colour": 1}},
            "Unsupported diarization option: colour.",
        ),
        (
            {"diarization": {"enabled": False, "num_speakers": 2}},
            "diarization options require diarization.enabled=true.",
        ),
    ],
)
def test_it_refuses_invalid_fields_with_the_reference_messages(
    api: JobsApi, fields: dict[str, Any], message: str
) -> None:
    error = error_of(api.submit(job_body(**fields)))
    assert error["message"] == message
    assert error["type"] == "invalid_request_error"
    assert error["param"] == next(iter(fields))
    assert Job.objects.count() == 0


def test_it_requires_a_job_type(api: JobsApi) -> None:
    body = job_body()
    del body["job_type"]
    assert error_of(api.submit(body))["message"] == "The 'job_type' field is required."


@pytest.mark.parametrize("diarization", [None, {"enabled": False}])
def test_it_accepts_disabled_diarization(api: JobsApi, diarization: Any) -> None:
    assert api.submit(job_body(diarization=diarization)).status_code == 201


def test_it_refuses_an_unknown_model_and_accepts_configured_ones(api: JobsApi) -> None:
    error = error_of(api.submit(job_body(model="no-such-model")))
    assert error["message"].startswith("Unsupported model 'no-such-model'. Accepted values:")
    assert error["param"] == "model"
    for model in ("auto", "whisper-1", "tiny.en"):
        assert api.submit(job_body(model=model)).status_code == 201, model


def test_it_refuses_an_unknown_language(api: JobsApi) -> None:
    assert error_of(api.submit(job_body(language="klingon")))["param"] == "language"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            "task_ref=x",
            "application/x-www-form-urlencoded",
            "Batch job submission requires application/json.",
        ),
        (b"\xff\xfe", "application/json", "Request body was not valid JSON."),
        ("{", "application/json", "Request body was not valid JSON."),
        ("[1, 2]", "application/json", "Request body must be a JSON object."),
    ],
)
def test_it_refuses_bodies_that_are_not_a_json_object(
    api: JobsApi, body: Any, content_type: str, message: str
) -> None:
    assert error_of(api.submit(body, content_type=content_type))["message"] == message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://not-allowed.example/a.mp3", "allowlist"),
        ("http://media.example.com/a.mp3", "Plain HTTP"),
        ("ftp://media.example.com/a.mp3", "https"),
    ],
)
def test_it_refuses_a_url_outside_the_policy_and_creates_no_job(
    api: JobsApi, url: str, fragment: str
) -> None:
    error = error_of(api.submit(job_body(input={"kind": "url", "url": url}, task_ref="t")))
    assert fragment in error["message"]
    assert error["code"] == "url_not_allowed"
    assert Job.objects.count() == 0
    assert DBTaskResult.objects.count() == 0


@pytest.mark.parametrize(
    ("token", "message"), [(None, "Missing bearer token."), ("nope", "Invalid bearer token.")]
)
def test_it_refuses_requests_without_a_valid_token(
    api: JobsApi, token: str | None, message: str
) -> None:
    response = api.submit(job_body(), token=token)
    assert error_of(response, 401)["message"] == message
    assert response["WWW-Authenticate"] == "Bearer"
    assert Job.objects.count() == 0

"""Batch ``job_type=synthesize``: validation, idempotency, and the round trip — text becomes
speech artifacts that the real STT engine hears as the same words."""

from __future__ import annotations

import io
import time
from typing import Any

import av
import pytest

from tests.conftest import ServerProcess
from tests.jobs.conftest import JobsApi
from tests.jobs.test_views import body_of
from tests.speech import HEARD_SYNTHESIS, SENTENCES, word_error_rate
from tests.tts.conftest import listen
from voxhelm.audio import decode
from voxhelm.config import Config
from voxhelm.jobs import pipeline
from voxhelm.jobs.models import Job, JobState

TEXT = " ".join(SENTENCES[1:])


def synth(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"job_type": "synthesize", "input": {"kind": "text", "text": TEXT}}
    body.update(fields)
    return body


def run(job_id: str, config: Config) -> Job:
    job = Job.objects.get(pk=job_id)
    pipeline.run(job_id, task_id=job.django_task_id, worker="test:1", config=config)
    return Job.objects.get(pk=job_id)


def test_a_synthesis_job_speaks_the_text_in_every_format(api: JobsApi, jobs_config: Config) -> None:
    response = api.submit(synth(voice="alloy", output={"formats": ["wav", "mp3", "ogg"]}))
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    job = run(job_id, jobs_config)

    assert job.state == JobState.SUCCEEDED, job.error_detail
    body = api.get(job_id).json()
    assert set(body["result"]["artifacts"]) == {"wav", "mp3", "ogg"}
    metadata = body["result"]["metadata"]
    assert (metadata["backend"], metadata["model"], metadata["requested_model"]) == (
        "piper", "piper", "auto"
    )  # fmt: skip
    assert metadata["voice"] == "en_US-joe-medium"
    assert 2.0 < metadata["duration_seconds"] < 10.0
    assert "text" not in body["result"]
    for fmt, content_type in (("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("ogg", "audio/ogg")):
        download = api.artifact(job_id, f"speech.{fmt}")
        assert download.status_code == 200
        assert download["Content-Type"] == content_type
        data = body_of(download)
        with av.open(io.BytesIO(data)) as container:
            assert container.streams.audio[0].codec_context.name
        heard = listen(decode(io.BytesIO(data)))
        assert word_error_rate(TEXT, heard) <= HEARD_SYNTHESIS, (fmt, heard)


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({"voice": "no-such-voice"}, "voice", "voice"),
        ({"input": {"kind": "text", "text": "   "}}, "input", "input.text"),
        ({"input": {"kind": "url", "url": "https://x.test/a"}}, "input", "input.kind=text"),
        ({"input": {"kind": "text", "text": "x" * 5001}}, "input.text", "character limit"),
        ({"speed": 9}, "speed", "between 0.25 and 4.0"),
        ({"speed": True}, "speed", "between 0.25 and 4.0"),
        ({"model": "whisper-1"}, "model", "model"),
        ({"output": {"formats": ["vtt"]}}, "output", "Unsupported output format"),
        ({"job_type": "translate"}, "job_type", "Accepted values: synthesize, transcribe."),
    ],
)
def test_bad_synthesis_requests_are_400s_without_a_job(
    api: JobsApi, fields: dict[str, Any], param: str, message: str
) -> None:
    response = api.submit(synth(**fields))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert message in error["message"], error
    assert (error["param"] or "").startswith(param.split(".", maxsplit=1)[0]), error
    assert not Job.objects.exists()


def test_a_task_ref_retry_matches_only_the_same_speech(api: JobsApi) -> None:
    first = api.submit(synth(task_ref="promo"))
    same = api.submit(synth(task_ref="promo"))
    other_text = api.submit(synth(task_ref="promo", input={"kind": "text", "text": "Hello."}))
    other_voice = api.submit(synth(task_ref="promo", speed=1.5))
    assert [r.status_code for r in (first, same, other_text, other_voice)] == [201, 200, 201, 201]
    assert first.json()["id"] == same.json()["id"]
    assert len({r.json()["id"] for r in (first, other_text, other_voice)}) == 3


def test_synthesis_runs_where_transcription_runs(api: JobsApi, configure: Any) -> None:
    # remote_pull mode: a remote worker leases it (no task); a server of only `voxhelm web`
    # and remote workers has no local worker that would ever run a task.
    configure(
        VOXHELM_TRANSCRIPTION_EXECUTION_MODE="remote_pull",
        VOXHELM_ARTIFACT_BACKEND="filesystem",
    )
    response = api.submit(synth())
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.execution_mode, job.django_task_id, job.state) == ("remote_pull", "", "queued")


def test_synthesis_may_stay_on_the_local_workers(api: JobsApi, configure: Any) -> None:
    configure(
        VOXHELM_TRANSCRIPTION_EXECUTION_MODE="remote_pull",
        VOXHELM_SYNTHESIS_EXECUTION_MODE="django_tasks",
        VOXHELM_ARTIFACT_BACKEND="filesystem",
    )
    response = api.submit(synth())
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.execution_mode, bool(job.django_task_id)) == ("django_tasks", True)


@pytest.mark.slow
def test_a_synthesis_job_round_trips_on_the_real_server(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.post("/v1/jobs", json=synth(output={"formats": ["flac"]}))
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert job["state"] == "succeeded", job
        audio = client.get(job["result"]["artifacts"]["flac"])
        assert audio.headers["content-type"] == "audio/flac"
    heard = listen(decode(io.BytesIO(audio.content)))
    assert word_error_rate(TEXT, heard) <= HEARD_SYNTHESIS, heard

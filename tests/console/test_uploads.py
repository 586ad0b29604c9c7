"""``POST /uploads``: the console's script stages a file too large for the form (the path and
caps of ``POST /v1/uploads``), then the form names it and a batch job is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.console.conftest import OPERATOR, post_console
from tests.media import speech_in
from tests.speech import SENTENCES, synthesize
from tests.stores import list_keys
from voxhelm.config import Config
from voxhelm.console.forms import STAGED_GONE
from voxhelm.console.operators import bootstrap_operator
from voxhelm.console.uploads import CSRF_FAILED
from voxhelm.jobs.models import Job, JobState
from voxhelm.uploads.models import StagedUpload


@pytest.fixture(scope="module")
def speech_wav() -> bytes:
    return speech_in("wav", synthesize(SENTENCES[1]))


@pytest.fixture
def operator(transactional_db: None) -> User:
    # transactional_db: staging runs on a thread of its own, with its own connection.
    bootstrap_operator(OPERATOR, "pw-olivia")
    return User.objects.get(username=OPERATOR)


def stage(client: Client, data: bytes, name: str = "Episode 7.wav", **headers: str) -> Any:
    upload = SimpleUploadedFile(name, data, content_type="audio/wav")
    return client.post(
        "/uploads", {"file": upload}, headers={"Accept": "application/json", **headers}
    )


def staged_keys(config: Config) -> list[str]:
    return list_keys(config, "voxhelm/staged-inputs")


def test_it_stages_a_file_for_the_operator_and_the_form_makes_a_batch_job(
    operator_client: Client, console_config: Config, speech_wav: bytes
) -> None:
    response = stage(operator_client, speech_wav)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["filename"], body["size_bytes"]) == ("Episode 7.wav", len(speech_wav))
    assert body["size"].endswith("KiB")
    upload = StagedUpload.objects.get(pk=body["id"])
    assert upload.producer == f"operator:{OPERATOR}"
    assert staged_keys(console_config) == [upload.storage_key]

    page = post_console(operator_client, staged_upload=body["id"], language="en")
    job = Job.objects.get()
    assert page.status_code == 302 and page["Location"] == f"/?job={job.pk}"
    assert (job.producer, job.dispatch_mode, job.state) == (
        f"operator:{OPERATOR}", "batch", JobState.QUEUED
    )  # fmt: skip
    assert job.input_data["upload_id"] == body["id"]
    assert job.context_data["source_name"] == "Episode 7.wav"
    upload.refresh_from_db()
    assert upload.claimed_by_job_id == job.pk


def test_a_staged_file_is_used_once_and_only_by_its_operator(
    operator_client: Client, make_client: Callable[[User], Client], speech_wav: bytes
) -> None:
    upload_id = stage(operator_client, speech_wav).json()["id"]
    bootstrap_operator("oscar", "pw-oscar")
    oscar = make_client(User.objects.get(username="oscar"))
    assert STAGED_GONE in post_console(oscar, staged_upload=upload_id).content.decode()
    assert not Job.objects.exists()
    assert post_console(operator_client, staged_upload=upload_id).status_code == 302
    again = post_console(operator_client, staged_upload=upload_id).content.decode()
    assert STAGED_GONE in again and Job.objects.count() == 1


def test_a_form_error_keeps_the_staged_file(operator_client: Client, speech_wav: bytes) -> None:
    upload_id = stage(operator_client, speech_wav).json()["id"]
    page = post_console(operator_client, staged_upload=upload_id, language="klingon")
    text = page.content.decode()
    assert "Unsupported language" in text
    assert f'value="{upload_id}"' in text and "Uploaded: <strong>Episode 7.wav</strong>" in text
    assert not Job.objects.exists()


def test_it_checks_the_csrf_token_and_leaves_nothing_when_it_fails(
    operator: User, console_config: Config, speech_wav: bytes
) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    response = stage(browser, speech_wav)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == CSRF_FAILED
    assert not StagedUpload.objects.exists() and staged_keys(console_config) == []

    browser.get("/")  # the page sets the CSRF cookie; its form carries the token
    token = browser.cookies["csrftoken"].value
    assert stage(browser, speech_wav, **{"X-CSRFToken": token}).status_code == 201


def test_it_refuses_a_file_over_the_staging_cap_in_json(
    configure: Callable[..., Config], operator_client: Client, speech_wav: bytes
) -> None:
    config = configure(VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES="4096")
    response = stage(operator_client, speech_wav)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["message"] == "Uploaded file exceeded the configured 4 KiB batch staging limit."
    assert not StagedUpload.objects.exists() and staged_keys(config) == []


def test_it_refuses_text_and_non_operators(
    operator_client: Client, make_client: Callable[[User], Client]
) -> None:
    text = SimpleUploadedFile("notes.wav", b"#EXTM3U\nhttp://example.com/a.mp3\n" * 40)
    response = operator_client.post("/uploads", {"file": text})
    assert response.status_code == 400
    assert "not audio or video" in response.json()["error"]["message"]
    visitor = make_client(User.objects.create_user("visitor"))
    refused = visitor.post("/uploads", {"file": text})
    assert refused.status_code == 403 and b"site-header" in refused.content
    assert not StagedUpload.objects.exists()

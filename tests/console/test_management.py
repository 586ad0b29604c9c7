"""Managing jobs in the console: cancel, retry, delete with a confirmation, the ETA, the filter
box and the empty list, each only on the operator's own jobs (Django's test client; the
browser flows are in test_management_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.jobs.test_views import succeed
from tests.stores import list_keys
from voxhelm.artifacts.models import JobArtifact
from voxhelm.batch.request import JobOutputs, JobRequest, UploadSource, UrlSource
from voxhelm.config import Config
from voxhelm.console.operators import bootstrap_operator
from voxhelm.jobs.models import DispatchMode, Job, JobState
from voxhelm.jobs.submit import submit_request
from voxhelm.storage.keys import job_prefix
from voxhelm.uploads.models import StagedUpload

PRODUCER = "operator:olivia"


@pytest.fixture
def new_job(console_config: Config, operator: User) -> Callable[..., Job]:
    def make(name: str = "episode.mp3", producer: str = PRODUCER) -> Job:
        request = JobRequest(UrlSource(f"https://media.example.com/{name}"), JobOutputs())
        return submit_request(producer, request, console_config).job

    return make


def csrf_client(operator: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    return client


def post_form(client: Client, path: str, page: str, **fields: str) -> Any:
    """POST a form of ``page`` as a browser does: with the page's CSRF token."""
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(page).text)
    assert token is not None
    return client.post(path, {"csrfmiddlewaretoken": token[1], **fields})


def test_it_cancels_a_queued_job_from_the_list(operator: User, new_job: Callable[..., Job]) -> None:
    job = new_job()
    client = csrf_client(operator)
    assert f'action="/transcripts/{job.pk}/cancel"' in client.get("/").text
    assert client.post(f"/transcripts/{job.pk}/cancel", {"next": "/"}).status_code == 403  # CSRF
    response = post_form(client, f"/transcripts/{job.pk}/cancel", "/", next="/")
    assert response.status_code == 302 and response["Location"] == "/"
    job.refresh_from_db()
    assert job.state == JobState.CANCELED
    page = client.get("/").text
    assert "Canceled “episode.mp3”." in page
    assert f'action="/transcripts/{job.pk}/retry"' in page
    assert f'action="/transcripts/{job.pk}/cancel"' not in page


def test_next_never_leads_off_the_site(
    operator_client: Client, new_job: Callable[..., Job]
) -> None:
    job = new_job()
    response = operator_client.post(
        f"/transcripts/{job.pk}/cancel", {"next": "https://evil.example.com/"}
    )
    assert response["Location"] == "/"


def test_a_retry_is_a_new_job_with_the_same_request(
    operator_client: Client, new_job: Callable[..., Job]
) -> None:
    job = new_job("broken.mp3")
    assert job.mark_running("test:1") and job.mark_failed("fetch_failed", "Could not fetch.")
    response = operator_client.post(f"/transcripts/{job.pk}/retry")
    retried = Job.objects.exclude(pk=job.pk).get()
    assert response["Location"] == f"/?job={retried.pk}"
    assert retried.state == JobState.QUEUED and retried.producer == PRODUCER
    assert retried.input_data == job.input_data and retried.output_data == job.output_data
    assert retried.context_data["retry_of"] == str(job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED  # the failed one stays as it was


def test_a_succeeded_job_is_not_retried(
    operator_client: Client, new_job: Callable[..., Job], console_config: Config
) -> None:
    job = new_job()
    succeed(job, console_config)
    response = operator_client.post(f"/transcripts/{job.pk}/retry", follow=True)
    assert "Only a failed or canceled job can be retried" in response.text
    assert Job.objects.count() == 1


def test_a_retried_console_upload_is_staged_again_from_the_kept_source(
    operator_client: Client, console_config: Config, operator: User
) -> None:
    """A run at once has no staged upload; its kept source is staged for the new job."""
    request = JobRequest(
        UploadSource(filename="kitchen.wav", content_type="audio/wav"), JobOutputs()
    )
    job = submit_request(
        PRODUCER, request, console_config, dispatch=DispatchMode.SYNC, worker="test:1"
    ).job
    media = b"RIFF" + bytes(range(256)) * 64
    JobArtifact.objects.put(
        job,
        "source.wav",
        kind="source",
        format="",
        content_type="audio/wav",
        exposed=False,
        data=media,
        config=console_config.artifacts,
    )
    assert job.mark_failed("transcription_failed", "The engine failed.")
    operator_client.post(f"/transcripts/{job.pk}/retry")
    retried = Job.objects.exclude(pk=job.pk).get()
    upload = StagedUpload.objects.get(claimed_by_job=retried)
    assert (upload.producer, upload.filename, upload.size_bytes) == (
        PRODUCER,
        "kitchen.wav",
        len(media),
    )
    assert retried.dispatch_mode == "batch" and retried.state == JobState.QUEUED


def test_a_retry_without_media_says_so(operator_client: Client, console_config: Config) -> None:
    request = JobRequest(UploadSource(filename="gone.wav"), JobOutputs())
    job = submit_request(
        PRODUCER, request, console_config, dispatch=DispatchMode.SYNC, worker="test:1"
    ).job
    job.cancel()
    page = operator_client.post(f"/transcripts/{job.pk}/retry", follow=True).text
    assert "The media of this job is no longer kept; submit it again." in page
    assert Job.objects.count() == 1


def test_delete_asks_first_then_removes_the_job_and_its_files(
    operator: User, new_job: Callable[..., Job], console_config: Config
) -> None:
    job = new_job()
    succeed(job, console_config)
    client = csrf_client(operator)
    confirm = client.get(f"/transcripts/{job.pk}/delete")
    assert confirm.status_code == 200
    assert "Delete “episode.mp3”?" in confirm.text and "cannot be undone" in confirm.text
    assert Job.objects.filter(pk=job.pk).exists()  # asking deletes nothing
    assert client.post(f"/transcripts/{job.pk}/delete").status_code == 403  # CSRF
    response = post_form(client, f"/transcripts/{job.pk}/delete", f"/transcripts/{job.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Job.objects.filter(pk=job.pk).exists()
    assert list_keys(console_config, job_prefix(console_config.artifacts.prefix, job.pk)) == []
    assert "Deleted “episode.mp3”." in client.get("/").text


def test_a_running_job_is_not_deleted(operator_client: Client, new_job: Callable[..., Job]) -> None:
    job = new_job()
    assert job.mark_running("test:1")
    page = operator_client.get(f"/transcripts/{job.pk}").text
    assert f'href="/transcripts/{job.pk}/delete"' not in page
    answer = operator_client.post(f"/transcripts/{job.pk}/delete", follow=True)
    assert "The job is running: cancel it first, then delete it." in answer.text
    assert Job.objects.filter(pk=job.pk).exists()


def test_another_operator_can_manage_none_of_them(
    new_job: Callable[..., Job], make_client: Callable[[User], Client]
) -> None:
    job = new_job()
    bootstrap_operator("oscar", "pw-oscar")
    oscar = make_client(User.objects.get(username="oscar"))
    for action in ("cancel", "retry", "delete"):
        assert oscar.post(f"/transcripts/{job.pk}/{action}").status_code == 404
    assert oscar.get(f"/transcripts/{job.pk}/delete").status_code == 404
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


def test_a_running_job_shows_its_eta(operator_client: Client, new_job: Callable[..., Job]) -> None:
    job = new_job()
    assert job.mark_running("test:1") and job.set_progress(40, "transcribing", 250.0)
    assert "about 4 minutes left" in operator_client.get("/jobs").text
    assert "about 4 minutes left" in operator_client.get(f"/transcripts/{job.pk}/status").text


def test_the_filter_box_filters_by_name_and_state_on_the_server(
    operator_client: Client, new_job: Callable[..., Job]
) -> None:
    kitchen, garden, other = new_job("kitchen-talk.mp3"), new_job("garden.mp3"), new_job("x.mp3")
    assert garden.cancel()
    names = lambda page: re.findall(r'class="job-name"[^>]*>([^<]+)<', page)  # noqa: E731
    assert names(operator_client.get("/?q=KITCHEN").text) == ["kitchen-talk.mp3"]
    assert names(operator_client.get("/?state=canceled").text) == ["garden.mp3"]
    assert names(operator_client.get("/jobs?q=.mp3&state=queued").text) == [
        "x.mp3",
        "kitchen-talk.mp3",
    ]
    page = operator_client.get("/?q=kitchen&state=queued").text
    assert 'data-poll-url="/jobs?q=kitchen&amp;state=queued"' in page  # the poll keeps it
    assert 'value="kitchen"' in page and '<option value="queued" selected>' in page
    assert names(operator_client.get("/?state=bogus").text) == [
        "x.mp3",
        "garden.mp3",
        "kitchen-talk.mp3",
    ]
    del kitchen, other


def test_the_empty_list_says_why(operator_client: Client, new_job: Callable[..., Job]) -> None:
    assert "No transcripts yet." in operator_client.get("/").text
    new_job()
    page = operator_client.get("/?q=nothing-like-it").text
    assert "No transcripts match “nothing-like-it”." in page
    assert '<a href="/">Show all transcripts</a>' in page

"""The console form and routing: validation, sync and batch runs, job records, ownership."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.console.conftest import body_of, post_console
from tests.held import lanes_held
from tests.jobs.media_server import MediaServer, serve_media
from tests.media import speech_in
from tests.speech import SENTENCES, passage, synthesize, word_error_rate
from voxhelm.config import Config
from voxhelm.console.forms import BAD_URL, NO_INPUT, TWO_INPUTS, SubmitForm
from voxhelm.console.operators import bootstrap_operator
from voxhelm.jobs import pipeline
from voxhelm.jobs.models import Job, JobState
from voxhelm.uploads.models import StagedUpload

pytestmark = pytest.mark.slow  # the real model transcribes


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        yield server


@pytest.fixture
def live_client(client: Client, console_config: Config, transactional_db: None) -> Client:
    # transactional_db: sync runs write from an inference thread with its own connection.
    bootstrap_operator("olivia", "pw-olivia")
    client.force_login(User.objects.get(username="olivia"))
    return client


def wav_upload(name: str = "speech.wav", text: str = SENTENCES[0]) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, synthesize(text).wav_bytes(), content_type="audio/wav")


def test_it_asks_for_exactly_one_input(operator_client: Client) -> None:
    assert NO_INPUT in post_console(operator_client).content.decode()
    both = post_console(
        operator_client, audio_url="https://media.example.com/a.mp3", audio_file=wav_upload()
    )
    assert TWO_INPUTS in both.content.decode()
    assert not Job.objects.exists()


@pytest.mark.parametrize("url", ["ftp://media.example.com/a.mp3", "https://", "http:///x"])
def test_it_refuses_urls_that_are_not_absolute_http(operator_client: Client, url: str) -> None:
    assert BAD_URL in post_console(operator_client, audio_url=url).content.decode()


def test_it_reads_a_url_without_scheme_as_https(console_config: Config) -> None:
    form = SubmitForm(console_config, {"video_url": "media.example.com/v.mp4", "model": "auto"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["video_url"] == "https://media.example.com/v.mp4"
    assert form.cleaned_data["formats"] == ["json"]  # json is always kept


def test_it_refuses_an_unknown_language_and_a_large_upload(
    configure: Callable[..., Config], operator_client: Client
) -> None:
    configure(VOXHELM_MAX_UPLOAD_BYTES="1000")
    page = post_console(operator_client, audio_file=wav_upload(), language="klingon").content
    assert b"Unsupported language" in page
    assert b"Uploaded file exceeded 1000 bytes transcription limit." in page  # never "0 MiB"


def test_it_offers_speaker_labels_only_with_a_diarization_backend(
    configure: Callable[..., Config],
) -> None:
    assert "diarization" not in SubmitForm(configure(VOXHELM_DIARIZATION_BACKEND="none")).fields
    assert "diarization" in SubmitForm(configure(VOXHELM_DIARIZATION_BACKEND="onnx")).fields


def test_it_offers_the_configured_models(console_config: Config) -> None:
    choices = [value for value, _label in SubmitForm(console_config).fields["model"].choices]  # type: ignore[attr-defined]
    assert "auto" in choices and "whisper-1" in choices and "tiny.en" in choices


def test_it_sends_a_video_url_to_batch_as_the_operator(live_client: Client) -> None:
    response = post_console(live_client, video_url="https://media.example.com/show.mp4")
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/?job={job.pk}"
    assert (job.producer, job.dispatch_mode, job.state) == ("operator:olivia", "batch", "queued")
    assert job.input_data == {"kind": "url", "url": "https://media.example.com/show.mp4"}
    assert job.context_data["submission_type"] == "video_url"
    page = live_client.get(response["Location"]).content.decode()
    assert "show.mp4" in page and "Batch route" in page and 'aria-current="true"' in page


def test_it_shows_a_refused_url_as_a_form_error(live_client: Client) -> None:
    page = post_console(live_client, video_url="https://elsewhere.example.org/v.mp4")
    assert "URL host is not in the configured allowlist." in page.content.decode()
    assert not Job.objects.exists()


def test_it_transcribes_an_upload_at_once_and_keeps_it_as_a_sync_job(live_client: Client) -> None:
    response = post_console(live_client, audio_file=wav_upload())
    job = Job.objects.get()
    assert response["Location"] == f"/transcripts/{job.pk}"
    assert (job.dispatch_mode, job.state, job.producer) == ("sync", "succeeded", "operator:olivia")
    assert job.input_data == {
        "kind": "upload",
        "filename": "speech.wav",
        "content_type": "audio/wav",
    }
    assert word_error_rate(SENTENCES[0], job.result_text) < 0.2
    names = set(job.artifacts.values_list("name", flat=True))
    assert names == {"source.wav", "transcript.txt", "transcript.json", "transcript.vtt"}
    page = live_client.get(response["Location"]).content.decode()
    assert 'class="segment"' in page and "Sync route" in page
    assert all(f"/transcripts/{job.pk}/artifacts/{key}" in page for key in ("text", "json", "vtt"))
    vtt = live_client.get(f"/transcripts/{job.pk}/artifacts/vtt")
    assert vtt["Content-Type"] == "text/vtt; charset=utf-8"
    assert body_of(vtt).startswith(b"WEBVTT")


def test_it_transcribes_a_short_audio_url_at_once(live_client: Client, media: MediaServer) -> None:
    url = media.add("/clip.mp3", "audio/mpeg", speech_in("mp3", synthesize(SENTENCES[1])))
    post_console(live_client, audio_url=url, language="en")
    job = Job.objects.get()
    assert (job.dispatch_mode, job.state, job.language) == ("sync", "succeeded", "en")
    assert job.input_data == {"kind": "url", "url": url}
    assert job.result_metadata["source_url"] == url
    assert word_error_rate(SENTENCES[1], job.result_text) < 0.2


def test_it_sends_long_audio_urls_to_batch(
    live_client: Client, media: MediaServer, configure: Callable[..., Config]
) -> None:
    configure(
        VOXHELM_ALLOWED_URL_HOSTS="127.0.0.1:*",
        VOXHELM_TRUSTED_HTTP_HOSTS="127.0.0.1",
        VOXHELM_CONSOLE_SYNC_MAX_SECONDS="3",
    )
    url = media.add("/long.wav", "audio/wav", passage().wav_bytes())
    response = post_console(live_client, audio_url=url)
    job = Job.objects.get()
    assert response["Location"] == f"/?job={job.pk}"
    assert (job.dispatch_mode, job.state) == ("batch", "queued")


def test_it_stages_long_uploads_and_sends_them_to_batch(
    live_client: Client, configure: Callable[..., Config]
) -> None:
    config = configure(VOXHELM_CONSOLE_SYNC_MAX_SECONDS="3")
    long = SimpleUploadedFile("talk.wav", passage().wav_bytes(), content_type="audio/wav")
    response = post_console(live_client, audio_file=long)
    job = Job.objects.get()
    assert response["Location"] == f"/?job={job.pk}"
    assert (job.dispatch_mode, job.state, job.producer) == ("batch", "queued", "operator:olivia")
    assert (job.input_data["kind"], job.input_data["filename"]) == ("upload", "talk.wav")
    upload = StagedUpload.objects.get(pk=job.input_data["upload_id"])
    assert (upload.producer, upload.claimed_by_job_id) == ("operator:olivia", job.pk)
    pipeline.run(str(job.pk), task_id=job.django_task_id, worker="test:1", config=config)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error_detail
    assert word_error_rate(passage().text, job.result_text) <= 0.15
    assert not StagedUpload.objects.exists()  # used up by the finished job


def test_it_records_a_failed_sync_run_and_shows_why(live_client: Client) -> None:
    junk = SimpleUploadedFile("notes.wav", b"this is not audio" * 100, content_type="audio/wav")
    page = post_console(live_client, audio_file=junk).content.decode()
    assert "The media could not be decoded." in page


def test_a_run_at_once_waits_for_a_lane_no_longer_than_a_sync_request(
    live_client: Client, configure: Callable[..., Config]
) -> None:
    config = configure(
        VOXHELM_ALLOWED_URL_HOSTS="127.0.0.1:*",
        VOXHELM_TRUSTED_HTTP_HOSTS="127.0.0.1",
        VOXHELM_LANE_WAIT_SECONDS="0.5",
    )
    # Held for 20 s: a run admitted like a batch step (an hour's wait) would get its slot
    # then and succeed; a page's run gives up after the configured half second.
    with lanes_held(config, seconds=20):
        page = post_console(live_client, audio_file=wav_upload()).content.decode()
    job = Job.objects.get()
    assert (job.dispatch_mode, job.state, job.error_code) == ("sync", "failed", "server_busy")
    assert html.escape(job.error_detail) in page


def test_each_operator_sees_only_their_own_jobs(
    live_client: Client, make_client: Callable[[User], Client]
) -> None:
    post_console(live_client, video_url="https://media.example.com/mine.mp4")
    mine = Job.objects.get()
    bootstrap_operator("oscar", "pw-oscar")
    oscar = make_client(User.objects.get(username="oscar"))
    assert "mine.mp4" not in oscar.get("/").content.decode()
    assert "mine.mp4" not in oscar.get("/jobs").content.decode()
    for path in ("", "/status", "/audio", "/artifacts/text"):
        assert oscar.get(f"/transcripts/{mine.pk}{path}").status_code == 404
    assert "mine.mp4" in live_client.get("/jobs").content.decode()


def test_it_ignores_a_job_parameter_that_is_not_a_uuid(operator_client: Client) -> None:
    page = operator_client.get("/?job=not-a-uuid").content.decode()
    assert "No transcripts yet." in page


def test_non_staff_users_get_a_403_page(client: Client, db: None, console_config: Any) -> None:
    client.force_login(User.objects.create_user("visitor"))
    for path in ("/", "/jobs", "/transcripts/00000000-0000-0000-0000-000000000000"):
        response = client.get(path)
        assert response.status_code == 403
        assert response["Content-Type"].startswith("text/html")
        page = response.content.decode()
        assert "Operator access requires a staff account." in page
        assert 'class="site-header"' in page and "console.css" in page  # the console's layout
        assert "Log out" not in page  # the account menu is for operators
    audio = client.get("/transcripts/00000000-0000-0000-0000-000000000000/audio")  # async view
    assert audio.status_code == 403 and b"staff account" in audio.content


def test_visitors_are_sent_to_sign_in(client: Client, db: None) -> None:
    response = client.get("/jobs")
    assert response.status_code == 302 and response["Location"] == "/?next=/jobs"


def test_the_job_list_fragment_says_whether_it_is_live(live_client: Client) -> None:
    post_console(live_client, video_url="https://media.example.com/show.mp4")
    fragment = live_client.get("/jobs").content.decode()
    assert fragment.startswith('<div id="job-list"') and 'data-live="true"' in fragment
    Job.objects.update(state=JobState.CANCELED)
    assert 'data-live="false"' in live_client.get("/jobs").content.decode()


def test_the_transcript_json_is_the_stored_one(live_client: Client) -> None:
    post_console(live_client, audio_file=wav_upload())
    job = Job.objects.get()
    body = body_of(live_client.get(f"/transcripts/{job.pk}/artifacts/json"))
    assert json.loads(body)["segments"][0]["start"] >= 0.0
    audio = live_client.get(f"/transcripts/{job.pk}/audio", HTTP_RANGE="bytes=0-99")
    assert audio.status_code == 206 and audio["Content-Range"].startswith("bytes 0-99/")
    assert body_of(audio) == synthesize(SENTENCES[0]).wav_bytes()[:100]

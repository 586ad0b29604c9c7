"""Job callbacks: signed POSTs to a real loopback receiver, retries with backoff, every way a
job can end, and the guarded fetcher's rules for the callback URL."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import ServerProcess, start_server
from tests.jobs.conftest import JobsApi, job_body
from tests.jobs.media_server import MediaServer, serve_media
from tests.media import speech_in
from tests.speech import synthesize
from voxhelm.config import Config
from voxhelm.jobs import pipeline, webhooks
from voxhelm.jobs.models import Job, JobState
from voxhelm.stt.registry import ENGINES
from voxhelm.transcript import Segment, Transcript

SECRET = "webhook-test-secret"


@dataclass
class Receiver:
    """Records each POST (headers, body); answers with the next queued status (default 204)."""

    port: int = 0
    statuses: list[int] = field(default_factory=list)
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/voxhelm"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 204
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        server.add("/clip.mp3", "audio/mpeg", speech_in("mp3", synthesize("Hello there.")))
        yield server


@pytest.fixture
def hook_config(configure: Callable[..., Config]) -> Config:
    return configure(
        VOXHELM_ALLOWED_URL_HOSTS="127.0.0.1:*",
        VOXHELM_TRUSTED_HTTP_HOSTS="127.0.0.1",
        VOXHELM_WEBHOOK_SECRET=SECRET,
        VOXHELM_WEBHOOK_MAX_ATTEMPTS="3",
    )


@pytest.fixture
def fixed_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed transcript: these tests are about what happens after the job ends."""

    def transcribe(audio: Any, model: str, request: Any, config: Any) -> Transcript:
        segments = [Segment(id=0, start=0.0, end=1.0, text=" Hello there.")]
        return Transcript.from_segments(segments, "en", audio.duration, backend="x", model="y")

    monkeypatch.setattr(ENGINES, "transcribe", transcribe)


def verify(headers: dict[str, str], body: bytes) -> None:
    timestamp = headers["x-voxhelm-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(headers["x-voxhelm-signature"], "sha256=" + expected.hexdigest())
    assert abs(time.time() - int(timestamp)) < 60


def finished_job(api: JobsApi, config: Config, media: MediaServer, url: str) -> Job:
    response = api.submit(
        job_body(input={"kind": "url", "url": media.url("/clip.mp3")}, callback_url=url)
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    pipeline.run(str(job.pk), task_id=job.django_task_id, worker="test:1", config=config)
    return Job.objects.get(pk=job.pk)


def test_a_finished_job_is_posted_signed_to_its_callback(
    api: JobsApi, hook_config: Config, media: MediaServer, receiver: Receiver, fixed_engine: None
) -> None:
    job = finished_job(api, hook_config, media, receiver.url)
    assert job.state == JobState.SUCCEEDED
    assert api.get(job.pk).json()["webhook"] == {
        "url": receiver.url, "state": "waiting", "attempts": []
    }  # fmt: skip
    assert webhooks.deliver_due(hook_config) == 1

    [(headers, body)] = receiver.calls
    verify(headers, body)
    assert headers["x-voxhelm-event"] == "job.succeeded"
    assert headers["x-voxhelm-delivery"] == f"{job.pk}.1"
    assert headers["content-type"] == "application/json"
    sent = json.loads(body)
    assert (sent["id"], sent["state"]) == (str(job.pk), "succeeded")
    assert sent["result"]["text"] == "Hello there."
    shown = api.get(job.pk).json()["webhook"]
    assert shown["state"] == "delivered"
    assert [(a["attempt"], a["status"]) for a in shown["attempts"]] == [(1, 204)]
    assert webhooks.deliver_due(hook_config) == 0  # delivered once, not again


def test_failed_deliveries_are_retried_with_backoff_then_given_up(
    api: JobsApi, hook_config: Config, media: MediaServer, receiver: Receiver, fixed_engine: None
) -> None:
    receiver.statuses = [500, 302, 503]
    job = finished_job(api, hook_config, media, receiver.url)
    now = timezone.now()
    assert webhooks.deliver_due(hook_config, now) == 1
    job.refresh_from_db()
    assert job.webhook_state == "pending"
    assert job.webhook_next_at is not None and job.webhook_next_at > now + timedelta(seconds=5)
    assert webhooks.deliver_due(hook_config, now) == 0  # not due yet
    assert webhooks.deliver_due(hook_config, now + timedelta(minutes=1)) == 1  # the 302
    assert webhooks.deliver_due(hook_config, now + timedelta(hours=1)) == 1  # the 503
    job.refresh_from_db()
    assert job.webhook_state == "failed"
    assert [a.get("status") for a in job.webhook_attempts] == [500, 302, 503]
    assert len(receiver.calls) == 3  # the redirect was not followed
    assert "HTTP 302" in job.webhook_attempts[1]["error"]


def test_canceled_and_failed_jobs_call_back_too(
    api: JobsApi, hook_config: Config, media: MediaServer, receiver: Receiver
) -> None:
    clip = {"kind": "url", "url": media.url("/clip.mp3")}
    canceled = api.submit(job_body(input=clip, callback_url=receiver.url)).json()["id"]
    api.cancel(canceled)
    failing = api.submit(
        job_body(input={"kind": "url", "url": media.url("/missing.mp3")}, callback_url=receiver.url)
    ).json()["id"]
    job = Job.objects.get(pk=failing)
    pipeline.run(failing, task_id=job.django_task_id, worker="test:1", config=hook_config)

    assert webhooks.deliver_due(hook_config) == 2

    events = sorted(headers["x-voxhelm-event"] for headers, _ in receiver.calls)
    assert events == ["job.canceled", "job.failed"]


def test_an_unreachable_receiver_is_recorded_not_raised(
    api: JobsApi, hook_config: Config, media: MediaServer, fixed_engine: None
) -> None:
    from tests.conftest import free_port

    job = finished_job(api, hook_config, media, f"http://127.0.0.1:{free_port()}/hook")
    webhooks.deliver_due(hook_config)
    job.refresh_from_db()
    assert job.webhook_state == "pending"
    assert "connection refused" in job.webhook_attempts[0]["error"]


@pytest.mark.parametrize(
    ("env", "url", "code"),
    [
        ({}, "http://127.0.0.1:9/hook", "webhooks_disabled"),
        ({"VOXHELM_WEBHOOK_SECRET": SECRET}, "http://169.254.169.254/latest", "url_not_allowed"),
        ({"VOXHELM_WEBHOOK_SECRET": SECRET}, "http://10.0.0.5/hook", "url_not_allowed"),
        ({"VOXHELM_WEBHOOK_SECRET": SECRET}, "file:///etc/passwd", None),
        ({"VOXHELM_WEBHOOK_SECRET": SECRET}, "not a url", None),
    ],
)
def test_bad_callbacks_are_refused_at_submission(
    api: JobsApi, configure: Callable[..., Config], env: dict[str, str], url: str, code: str | None
) -> None:
    configure(
        VOXHELM_ALLOWED_URL_HOSTS="media.example.com,127.0.0.1:*",
        VOXHELM_WEBHOOK_ALLOWED_HOSTS="hooks.example.com,127.0.0.1:*",
        **env,
    )
    response = api.submit(job_body(callback_url=url))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == "callback_url"
    if code:
        assert error["code"] == code
    assert not Job.objects.exists()


def test_a_callback_is_not_part_of_the_idempotency_key(
    api: JobsApi, hook_config: Config, receiver: Receiver, media: MediaServer
) -> None:
    clip = {"kind": "url", "url": media.url("/clip.mp3")}
    first = api.submit(job_body(input=clip, task_ref="ep", callback_url=receiver.url))
    again = api.submit(job_body(input=clip, task_ref="ep", callback_url=receiver.url + "?x"))
    assert (first.status_code, again.status_code) == (201, 200)


@pytest.mark.slow
def test_the_worker_delivers_callbacks_on_its_own(
    tmp_path: Any, media: MediaServer, receiver: Receiver
) -> None:
    served: ServerProcess = start_server(
        tmp_path,
        {
            "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
            "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
            "VOXHELM_WEBHOOK_SECRET": SECRET,
        },
    )
    try:
        with served.client() as client:
            response = client.post(
                "/v1/jobs",
                json=job_body(
                    input={"kind": "url", "url": media.url("/clip.mp3")}, callback_url=receiver.url
                ),
            )
            assert response.status_code == 201, response.text
            deadline = time.monotonic() + 120
            while not receiver.calls:
                assert time.monotonic() < deadline, served.log()
                time.sleep(0.2)
    finally:
        served.stop()
    headers, body = receiver.calls[0]
    verify(headers, body)
    assert json.loads(body)["state"] == "succeeded"
    assert SECRET not in served.log()

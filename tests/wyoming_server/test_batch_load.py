"""A voice command while a batch job runs in another process: answered within about a window.

With the default reserved interactive slot it runs beside the batch window; without one it
waits for the window in progress, never for the rest of the job.

``voxhelm serve`` (web app and batch worker) and ``voxhelm-wyoming-stt`` run as separate
processes on one state directory, so they share the lane scheduler's slot, as they would on
a home server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import start_server
from tests.jobs.media_server import MediaServer, serve_media
from tests.media import speech_in
from tests.speech import BOOK, Speech, passage, synthesize, word_error_rate
from tests.wyoming_server.conftest import start_wyoming, transcribe

pytestmark = pytest.mark.slow

COMMAND = "Turn on the lights in the living room."


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        yield server


@pytest.mark.parametrize("reserved", ["1", "0"], ids=["reserved-slot", "shared-slot-only"])
def test_a_voice_command_waits_at_most_one_window_of_a_running_batch_job(
    tmp_path: Path, media: MediaServer, reserved: str
) -> None:
    once = passage(BOOK, pause_seconds=0.6)
    book = Speech(" ".join([once.text] * 3), np.tile(once.samples, 3), once.sample_rate)
    assert book.duration > 120
    url = media.add("/book.mp3", "audio/mpeg", speech_in("mp3", book))
    env = {
        "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
        "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
        "VOXHELM_LANE_INTERACTIVE_SLOTS": reserved,
    }
    web = start_server(tmp_path, env)
    voice = start_wyoming(tmp_path, env)
    try:
        command = synthesize(COMMAND)
        asyncio.run(transcribe(voice.port, command.samples, command.sample_rate))  # warm
        with web.client() as client:
            body = {"job_type": "transcribe", "input": {"kind": "url", "url": url}}
            job_id = client.post("/v1/jobs", json=body).json()["id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                job = client.get(f"/v1/jobs/{job_id}").json()
                if job["state"] == "running" and job["progress"]["percent"] > 15:
                    break  # the first window is done
                time.sleep(0.05)
            started = time.monotonic()
            events = asyncio.run(transcribe(voice.port, command.samples, command.sample_rate))
            latency = time.monotonic() - started
            running = client.get(f"/v1/jobs/{job_id}").json()
            while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] == "running":
                time.sleep(0.5)
    finally:
        voice.stop()
        web.stop()
    assert [e.type for e in events] == ["transcript"]
    assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15
    assert running["state"] == "running", "the batch job was over before the command came"
    assert job["state"] == "succeeded", job
    assert word_error_rate(book.text, job["result"]["text"]) <= 0.15
    processing = job["result"]["metadata"]["processing_seconds"]
    window = processing / 5  # the book is cut into five windows of about 30 s
    print(f"\nvoice command under batch load: {latency:.2f}s; batch window ~{window:.2f}s")
    # Waiting for the whole job would take most of ``processing``; one window is ~1/5 of it.
    assert latency < window * 1.5 + 2.0

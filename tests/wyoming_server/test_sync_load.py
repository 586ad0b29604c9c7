"""One long sync request on an idle machine uses more than one core, and a voice command
that comes meanwhile is still answered at once.

``voxhelm web`` and ``voxhelm-wyoming-stt`` run as separate processes on one state
directory, sharing the lane scheduler's slots as on a home server: two shared slots and the
reserved interactive one (the defaults). The request's windows run side by side on the two
shared slots (seen from outside: both slot locks held at once, and more than one core of
CPU time per second of wall time in the web process); the command takes the reserved slot.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from tests.conftest import PRODUCER_TOKEN, start_server
from tests.speech import BOOK, Speech, passage, synthesize, word_error_rate
from tests.wyoming_server.conftest import start_wyoming, transcribe

pytestmark = pytest.mark.slow

COMMAND = "Turn on the lights in the living room."


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_a_long_sync_request_uses_the_idle_cores_and_a_voice_command_still_goes_first(
    tmp_path: Path,
) -> None:
    once = passage(BOOK, pause_seconds=0.6)
    book = Speech(" ".join([once.text] * 3), np.tile(once.samples, 3), once.sample_rate)
    assert book.duration > 120
    recording = tmp_path / "book.wav"
    book.write_wav(recording)
    web = start_server(tmp_path, command="web")
    voice = start_wyoming(tmp_path)
    command = synthesize(COMMAND)
    result: dict[str, Any] = {}
    try:
        client = openai.OpenAI(
            base_url=f"{web.url}/v1", api_key=PRODUCER_TOKEN, timeout=600, max_retries=0
        )
        with recording.open("rb") as audio:  # warm: model load, first-call costs
            client.audio.transcriptions.create(model="whisper-1", file=audio)
        started = time.monotonic()
        idle = asyncio.run(transcribe(voice.port, command.samples, command.sample_rate))
        idle_latency = time.monotonic() - started

        def request() -> None:
            with recording.open("rb") as audio:
                result["text"] = client.audio.transcriptions.create(
                    model="whisper-1", file=audio
                ).text
            result["ended"] = time.monotonic()

        cpu_before, wall_before = cpu_seconds(web.process.pid), time.monotonic()
        thread = threading.Thread(target=request)
        thread.start()
        deadline = time.monotonic() + 120
        while web.slot_is_free(0) or web.slot_is_free(1):
            assert time.monotonic() < deadline, "the request never held both shared slots"
            assert thread.is_alive(), "the request ended without two windows side by side"
            time.sleep(0.02)
        started = time.monotonic()
        events = asyncio.run(transcribe(voice.port, command.samples, command.sample_rate))
        answered = time.monotonic()
        thread.join(600)
        cores = (cpu_seconds(web.process.pid) - cpu_before) / (result["ended"] - wall_before)
    finally:
        voice.stop()
        web.stop()
    assert [e.type for e in idle] == ["transcript"]
    assert [e.type for e in events] == ["transcript"]
    assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15
    assert word_error_rate(book.text, result["text"]) <= 0.15
    latency = answered - started
    print(
        f"\nlong request: {cores:.2f} cores busy; voice command {latency:.2f}s beside it, "
        f"{idle_latency:.2f}s idle"
    )
    assert cores > 1.2
    # The command ran beside the request's windows, not after them.
    assert answered < result["ended"]
    assert latency < 3 * idle_latency + 1.0

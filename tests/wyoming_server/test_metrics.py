"""Wyoming latency in the metrics: the server on a thread of this process, real TCP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.conftest import free_port, make_config
from tests.speech import synthesize
from tests.wyoming_server.conftest import describe, transcribe
from voxhelm.wyoming_server.__main__ import start_in_thread

pytestmark = pytest.mark.slow

LATENCY = "voxhelm_wyoming_stt_latency_seconds"


def count(outcome: str) -> float:
    return REGISTRY.get_sample_value(f"{LATENCY}_count", {"outcome": outcome}) or 0.0


def test_each_command_is_timed_from_audio_stop_to_the_answer(tmp_path: Path) -> None:
    port = free_port()
    start_in_thread(make_config(tmp_path), f"tcp://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if asyncio.run(describe(port)) is not None:
                break
        except OSError:
            time.sleep(0.1)
    before = count("transcript"), count("error")
    speech = synthesize("Turn on the kitchen lights.", pause_seconds=0.5)
    events = asyncio.run(transcribe(port, speech.samples, speech.sample_rate))
    assert events[-1].type == "transcript"
    assert "kitchen" in events[-1].data["text"].lower()
    assert count("transcript") == before[0] + 1
    assert count("error") == before[1]
    total = REGISTRY.get_sample_value(f"{LATENCY}_sum", {"outcome": "transcript"}) or 0.0
    assert 0 < total < 60

"""Load against a real ``voxhelm serve`` on loopback (``loadgen.py``): 50 concurrent
clients, 5,000 requests mixing ``GET /v1/health``, transcriptions of a one-second clip and
job submissions. With three inference threads and eight waiting places, most transcriptions
are turned away: that must be a 429 with ``Retry-After``, never a 5xx or a dropped
connection. The soak is ``test_soak.py``.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.hardening.conftest import ClipOrigin, Figures
from tests.hardening.loadgen import (
    TRANSCRIBE,
    Workload,
    check_answers,
    run_load,
    summarize,
)

# Capacity under load, not an attack: in the normal run, but not in `-m hardening`.
pytestmark = [pytest.mark.load, pytest.mark.slow]

CLIENTS = 50
REQUESTS = 5000


def test_fifty_clients_five_thousand_requests(
    loaded: ServerProcess, clip_origin: ClipOrigin, clip: bytes, figures: Figures
) -> None:
    workload = Workload(clip, f"http://127.0.0.1:{clip_origin.port}/clip.wav")
    started = time.monotonic()
    samples = asyncio.run(
        run_load(loaded.url, PRODUCER_TOKEN, workload, clients=CLIENTS, requests=REQUESTS)
    )
    elapsed = time.monotonic() - started
    summary = summarize(samples)
    print(json.dumps({"seconds": round(elapsed, 1), **summary}, indent=2))
    assert len(samples) == REQUESTS
    check_answers(samples)
    assert summary[TRANSCRIBE]["statuses"].get(200, 0) > 0  # some were served, not all refused
    assert loaded.process.poll() is None
    assert "Traceback" not in loaded.log()
    figures.add("load: seconds for 5,000 requests, 50 clients", round(elapsed, 1))
    for kind, figure in summary.items():
        figures.add(f"load: {kind}", figure)

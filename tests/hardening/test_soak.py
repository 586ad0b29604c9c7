"""The soak (marked ``soak``: left out of ``uv run pytest``, a CI step of its own): steady
mixed load on a real ``voxhelm serve`` for ``SOAK_SECONDS`` (600 by default) while the
server's RSS is sampled every second. After a warm-up (a fifth of the run, at least 30 s), the
floor of the last fifth of the samples (their 10th percentile) must be less than 10 % above that
of the first.
``SOAK_SECONDS=120 uv run pytest -m soak tests/hardening`` runs a short one.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.hardening.conftest import ClipOrigin, Figures
from tests.hardening.loadgen import (
    HEALTH,
    JOB,
    TRANSCRIBE,
    Sample,
    Workload,
    check_answers,
    run_load,
    summarize,
)

pytestmark = [pytest.mark.soak, pytest.mark.slow]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
SOAK_CLIENTS = 10
SOAK_SAMPLE_SECONDS = 1.0
RSS_GROWTH_LIMIT = 0.10


def rss_bytes(pid: int) -> int:
    process = psutil.Process(pid)
    return int(process.memory_info().rss) + sum(
        int(child.memory_info().rss) for child in process.children(recursive=True)
    )


def floor(samples: list[int]) -> float:
    """The 10th percentile: what the server holds when few requests are in flight."""
    return statistics.quantiles(samples, n=10)[0]


def test_soak_rss_stays_flat(
    loaded: ServerProcess, clip_origin: ClipOrigin, clip: bytes, figures: Figures, tmp_path: Path
) -> None:
    """Steady mixed load (few jobs, so the batch queue does not grow without end)."""
    workload = Workload(
        clip,
        f"http://127.0.0.1:{clip_origin.port}/clip.wav",
        weights={HEALTH: 0.6, TRANSCRIBE: 0.39, JOB: 0.01},
        think_seconds=0.1,
    )
    rss: list[tuple[float, int]] = []

    async def soak() -> list[Sample]:
        async def sample_rss() -> None:
            started = time.monotonic()
            while True:
                rss.append((time.monotonic() - started, rss_bytes(loaded.process.pid)))
                await asyncio.sleep(SOAK_SAMPLE_SECONDS)

        sampler = asyncio.create_task(sample_rss())
        try:
            return await run_load(
                loaded.url, PRODUCER_TOKEN, workload, clients=SOAK_CLIENTS, seconds=SOAK_SECONDS
            )
        finally:
            sampler.cancel()

    samples = asyncio.run(soak())
    check_answers(samples)
    warm_up = max(30.0, SOAK_SECONDS * 0.2)
    after = [value for at, value in rss if at >= warm_up]
    assert len(after) >= 50, rss
    # RSS swings by ~100 MiB with the transcriptions in flight (a 10-minute run: 300 to
    # 400 MiB, no trend), so where a sample lands decides its value: two runs of the same
    # code gave medians 0.1 % and 12 % apart. What a leak keeps, it keeps between requests
    # too, so it lifts the floor: compare the 10th percentiles of the first and last fifth.
    window = max(10, len(after) // 5)
    baseline = floor(after[:window])
    final = floor(after[-window:])
    growth = final / baseline - 1
    mib = 1024 * 1024
    report: dict[str, Any] = {
        "seconds": SOAK_SECONDS,
        "requests": len(samples),
        "rss_floor_first_fifth_mib": round(baseline / mib, 1),
        "rss_floor_last_fifth_mib": round(final / mib, 1),
        "rss_median_first_fifth_mib": round(statistics.median(after[:window]) / mib, 1),
        "rss_median_last_fifth_mib": round(statistics.median(after[-window:]) / mib, 1),
        "rss_min_mib": round(min(after) / mib, 1),
        "rss_peak_mib": round(max(v for _, v in rss) / mib, 1),
        "growth_percent": round(growth * 100, 1),
        **summarize(samples),
    }
    print(json.dumps(report, indent=2))
    (tmp_path / "rss.json").write_text(json.dumps(rss))
    figures.add("soak", report)
    assert growth < RSS_GROWTH_LIMIT, report

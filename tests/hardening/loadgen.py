"""A small load generator (asyncio + httpx): concurrent clients sending a weighted mix of
health checks, short synchronous transcriptions and job submissions, and what came back.

Used by ``test_load.py``; it can also be pointed at a running server by hand::

    uv run python -m tests.hardening.loadgen http://127.0.0.1:8000 TOKEN clip.wav URL
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerProcess, start_server

HEALTH = "health"
TRANSCRIBE = "transcribe"
JOB = "job"


@dataclass(frozen=True)
class Sample:
    """One request: its kind, status (0 = no answer), latency and Retry-After header."""

    kind: str
    status: int
    seconds: float
    retry_after: str | None


@dataclass
class Workload:
    """What the clients send."""

    clip: bytes  # a short recording for POST /v1/audio/transcriptions
    job_url: str  # the input URL of submitted jobs
    weights: Mapping[str, float] = field(
        default_factory=lambda: {HEALTH: 0.5, TRANSCRIBE: 0.35, JOB: 0.15}
    )
    think_seconds: float = 0.0  # pause of a client between two requests

    async def send(self, client: httpx.AsyncClient, kind: str) -> httpx.Response:
        if kind == HEALTH:
            return await client.get("/v1/health")
        if kind == TRANSCRIBE:
            return await client.post(
                "/v1/audio/transcriptions",
                files={"file": ("clip.wav", self.clip, "audio/wav")},
                data={"model": "whisper-1"},
            )
        body = {
            "job_type": "transcribe",
            "input": {"kind": "url", "url": self.job_url},
            "priority": "low",
        }
        return await client.post("/v1/jobs", json=body)


async def run_load(
    base_url: str,
    token: str,
    workload: Workload,
    *,
    clients: int,
    requests: int | None = None,
    seconds: float | None = None,
    seed: int = 7,
    on_sample: Callable[[Sample], None] | None = None,
) -> list[Sample]:
    """Run ``clients`` concurrent clients until ``requests`` were sent or ``seconds`` passed."""
    rng = random.Random(seed)
    kinds = list(workload.weights)
    weights = [workload.weights[k] for k in kinds]
    samples: list[Sample] = []
    budget = {"left": requests if requests is not None else sys.maxsize}
    deadline = time.monotonic() + seconds if seconds is not None else float("inf")
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}

    async def client_loop(client: httpx.AsyncClient) -> None:
        while budget["left"] > 0 and time.monotonic() < deadline:
            budget["left"] -= 1
            kind = rng.choices(kinds, weights)[0]
            started = time.perf_counter()
            try:
                response = await workload.send(client, kind)
                status, retry_after = response.status_code, response.headers.get("retry-after")
            except httpx.TransportError:
                status, retry_after = 0, None
            sample = Sample(kind, status, time.perf_counter() - started, retry_after)
            samples.append(sample)
            if on_sample is not None:
                on_sample(sample)
            if workload.think_seconds:
                await asyncio.sleep(workload.think_seconds)

    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=120, limits=limits
    ) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return samples


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` of 1) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """Per kind: count, statuses, p50/p95/max latency in ms (answered requests only)."""
    summary: dict[str, dict[str, Any]] = {}
    for kind in sorted({s.kind for s in samples}):
        mine = [s for s in samples if s.kind == kind]
        latencies = [s.seconds for s in mine]
        summary[kind] = {
            "requests": len(mine),
            "statuses": dict(sorted(Counter(s.status for s in mine).items())),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1),
        }
        for status in (200, 201, 429):
            answered = [s.seconds for s in mine if s.status == status]
            if answered and len(answered) != len(mine):
                summary[kind][f"p95_ms_{status}"] = round(percentile(answered, 0.95) * 1000, 1)
    return summary


def check_answers(samples: list[Sample]) -> None:
    """Every request answered; no 5xx but 503; each refusal (429/503) with ``Retry-After``."""
    dropped = [s for s in samples if s.status == 0]
    assert not dropped, f"{len(dropped)} requests got no answer"
    errors = [s for s in samples if s.status >= 500 and s.status != 503]
    assert not errors, f"{len(errors)} answers 5xx (not 503): {sorted({s.status for s in errors})}"
    allowed = {HEALTH: {200, 503}, TRANSCRIBE: {200, 429, 503}, JOB: {201, 429, 503}}
    odd = [s for s in samples if s.status not in allowed[s.kind]]
    assert not odd, sorted({(s.kind, s.status) for s in odd})
    refused = [s for s in samples if s.status in (429, 503)]
    assert all(s.retry_after and s.retry_after.isdigit() for s in refused)


def load_clip() -> bytes:
    """About one second of real speech (the bundled Piper voice)."""
    from tests.speech import synthesize

    return synthesize("Turn on the light.").wav_bytes()


def start_load_server(root: Path) -> ServerProcess:
    """A ``voxhelm serve`` with the default limits (3 inference threads, 8 waiting) that
    may fetch job inputs from loopback."""
    return start_server(
        root,
        {
            "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
            "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
            "VOXHELM_DIARIZATION_BACKEND": "none",
        },
    )


def main(argv: list[str]) -> None:
    base_url, token, clip, job_url = argv[:4]
    workload = Workload(Path(clip).read_bytes(), job_url)
    samples = asyncio.run(run_load(base_url, token, workload, clients=50, requests=5000))
    for kind, figures in summarize(samples).items():
        print(kind, figures)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Hostile media through the sync endpoint and through staged uploads + batch jobs.

Targets: every file is a clean 4xx or a 200 (sync) / a failed job with a code or a success
(batch) — a file that must be refused always is; never a 5xx, never an internal error; the
server process survives; no temporary file is left behind; the canary (which playlists in
the corpus point at) is never reached; each decode finishes in bounded time and the
server's memory stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.hardening.conftest import Figures, Target
from tests.hardening.media_corpus import Sample, samples
from tests.hardening.test_ssrf import wait_for_job

pytestmark = [pytest.mark.hardening, pytest.mark.slow]

MAX_SECONDS_PER_FILE = 30.0
MAX_RSS_GROWTH = 400 * 1024 * 1024
REFUSALS = (400, 413, 415)


class RssSampler:
    """The peak resident memory of a process, sampled every 50 ms from a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = self.process.memory_info().rss


@pytest.fixture(scope="module")
def corpus(target: Target) -> list[Sample]:
    return samples(target.canary.port)


@pytest.fixture
def server_unharmed(target: Target) -> Iterator[None]:
    log_before = len(target.server.log())
    yield
    assert target.server.process.poll() is None
    new_log = target.server.log()[log_before:]
    assert "Traceback" not in new_log
    assert "internal error" not in new_log.lower()
    assert target.canary.connections == 0


def leftover_temp_files(target: Target) -> list[str]:
    return [str(p) for p in target.server.tmp_dir.rglob("*")]


def test_the_corpus_has_at_least_sixty_files(corpus: list[Sample], figures: Figures) -> None:
    assert len(corpus) >= 60
    assert len({s.name for s in corpus}) == len(corpus)
    figures.add("media.files", len(corpus))
    figures.add("media.must_refuse", sum(s.must_refuse for s in corpus))


def test_sync_transcription_refuses_hostile_media_cleanly(
    target: Target, corpus: list[Sample], server_unharmed: None, figures: Figures
) -> None:
    outcomes: dict[str, Any] = {}
    slowest = 0.0
    with RssSampler(target.server.process.pid) as rss, target.client() as client:
        for sample in corpus:
            started = time.monotonic()
            response = client.post(
                "/v1/audio/transcriptions",
                data={"model": "whisper-1", "response_format": "json"},
                files={"file": (sample.filename, sample.data, sample.content_type)},
            )
            slowest = max(slowest, time.monotonic() - started)
            outcomes[sample.name] = (response.status_code, response.json().get("error", {}))
    statuses = {name: status for name, (status, _) in outcomes.items()}
    assert [n for n, s in statuses.items() if s >= 500] == []
    refused = [s.name for s in corpus if statuses[s.name] in REFUSALS]
    assert [s.name for s in corpus if s.must_refuse and s.name not in refused] == []
    assert [n for n, s in statuses.items() if s not in (200, *REFUSALS)] == []
    for name, (status, error) in outcomes.items():
        if status != 200:
            assert error.get("code"), name  # a machine-readable reason, always
            assert "/" not in error["message"], name  # no paths or URLs in the message
    assert slowest <= MAX_SECONDS_PER_FILE
    assert rss.peak - rss.start <= MAX_RSS_GROWTH
    time.sleep(0.5)  # the last request's directory is removed after the answer
    assert leftover_temp_files(target) == []
    figures.add("media.sync_refused", len(refused))
    figures.add("media.sync_decoded", sum(1 for s in statuses.values() if s == 200))
    figures.add("media.sync_5xx", sum(1 for s in statuses.values() if s >= 500))
    figures.add("media.sync_slowest_seconds", round(slowest, 2))
    figures.add("media.sync_rss_peak_growth_mib", round((rss.peak - rss.start) / 2**20, 1))
    figures.add("media.temp_files_leaked", len(leftover_temp_files(target)))


def test_batch_jobs_fail_hostile_media_with_a_code(
    target: Target, corpus: list[Sample], server_unharmed: None, figures: Figures
) -> None:
    staged_refused: dict[str, int] = {}
    job_ids: dict[str, str] = {}
    with RssSampler(target.server.process.pid) as rss, target.client() as client:
        for sample in corpus:
            staged = client.post(
                "/v1/uploads", files={"file": (sample.filename, sample.data, sample.content_type)}
            )
            if staged.status_code != 201:
                assert staged.status_code in REFUSALS, (sample.name, staged.text)
                assert staged.json()["error"]["code"], sample.name
                staged_refused[sample.name] = staged.status_code
                continue
            submitted = client.post(
                "/v1/jobs",
                json={
                    "job_type": "transcribe",
                    "input": {"kind": "upload", "upload_id": staged.json()["id"]},
                },
            )
            assert submitted.status_code == 201, (sample.name, submitted.text)
            job_ids[sample.name] = submitted.json()["id"]
        jobs = {name: wait_for_job(client, job_id) for name, job_id in job_ids.items()}
    failed = {name: job["error"]["code"] for name, job in jobs.items() if job["state"] == "failed"}
    assert {name: job["state"] for name, job in jobs.items()} == {
        name: "failed" if name in failed else "succeeded" for name in jobs
    }
    assert "internal_error" not in failed.values()
    for sample in corpus:
        if sample.must_refuse:
            assert sample.name in staged_refused or sample.name in failed, sample.name
    assert rss.peak - rss.start <= MAX_RSS_GROWTH
    time.sleep(0.5)
    assert leftover_temp_files(target) == []
    figures.add("media.batch_refused_at_staging", len(staged_refused))
    figures.add("media.batch_failed_with_code", len(failed))
    figures.add("media.batch_succeeded", len(jobs) - len(failed))
    figures.add("media.batch_codes", sorted(set(failed.values())))
    figures.add("media.batch_rss_peak_growth_mib", round((rss.peak - rss.start) / 2**20, 1))

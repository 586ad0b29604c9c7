"""Decode bombs and poisoned samples against the real server, sync and batch.

Targets: a file of a few bytes that decodes to hours (a FLAC frame at 8 or 16 Hz, in FLAC,
Matroska or Ogg, or a frame that changes the rate mid-stream; a WAV at 2 GHz) is refused
with a 400 within a second, the server's memory grows by less than 100 MB meanwhile and is
back afterwards. Float audio of NaN or infinities is answered in seconds with an empty
transcript (never Whisper's "))))" garbage), and speech with a few NaN samples in it is
still transcribed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from tests.hardening.bombs import flac_bomb, remuxed, wav
from tests.hardening.conftest import Figures, Target
from tests.hardening.test_ssrf import wait_for_job
from tests.media import reference
from tests.speech import synthesize, word_error_rate

pytestmark = pytest.mark.hardening

MIB = 2**20
MAX_RSS_GROWTH = 100 * MIB
MAX_RSS_KEPT = 40 * MIB  # over the module's starting point, after every answer
MAX_REFUSAL_SECONDS = 1.0
MAX_POISON_SECONDS = 5.0
POISON_RATE = 8000  # 120 s of float32 at 8 kHz is 3.84 MB, under the 4 MiB sync upload cap
SPOKEN = "Please turn on the kitchen lights."


def _bombs() -> dict[str, tuple[bytes, str]]:
    rate_refused = "unsupported_sample_rate"
    return {
        "flac-16hz": (flac_bomb(16), rate_refused),  # the 55 bytes of the report
        "flac-8hz": (flac_bomb(8), rate_refused),
        "flac-44k-frames-at-16hz": (flac_bomb(44100, frames=4, frame_rate=16), rate_refused),
        "matroska-flac-16hz": (remuxed(flac_bomb(16, frames=4), "matroska"), rate_refused),
        "ogg-flac-16hz": (remuxed(flac_bomb(16, frames=4), "ogg"), rate_refused),
        "wav-2ghz": (wav(np.zeros(500_000, np.int16), 2_000_000_000), rate_refused),
    }


BOMBS = _bombs()


class RssSampler:
    """Peak resident memory of a process and its children, sampled every 2 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.current()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        family = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in family if p.is_running())

    def _run(self) -> None:
        # The children are listed once: walking /proc each time would slow the sampling.
        family = [self.process, *self.process.children(recursive=True)]
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, sum(p.memory_info().rss for p in family))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def baseline(target: Target) -> int:
    """The server's memory before the first bomb: model loaded, a refusal answered."""
    with target.client() as client:
        deadline = time.monotonic() + 90
        while not client.get("/v1/health").json()["models"]:  # the warm-up loads it
            assert time.monotonic() < deadline, "the default model did not load"
            time.sleep(0.2)
        for _ in range(3):  # the first refusals load what every later request reuses
            client.post(
                "/v1/audio/transcriptions",
                data={"model": "whisper-1"},
                files={"file": ("warm.flac", b"fLaC not really", "audio/flac")},
            )
    time.sleep(0.2)
    return RssSampler(target.server.process.pid).current()


@pytest.fixture
def client(target: Target) -> Iterator[httpx.Client]:
    with target.client() as client:
        yield client


def transcribe(client: httpx.Client, data: bytes, name: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1", "response_format": "json"},
        files={"file": (name, data, "application/octet-stream")},
        timeout=30,  # the NaN audio held a slot for minutes before the fix
    )
    return response, time.monotonic() - started


def run_job(client: httpx.Client, data: bytes, name: str) -> dict[str, Any]:
    """Stage ``data``, submit a transcription job on it and wait until the job has ended."""
    staged = client.post("/v1/uploads", files={"file": (name, data, "audio/flac")})
    assert staged.status_code == 201, staged.text
    submitted = client.post(
        "/v1/jobs",
        json={
            "job_type": "transcribe",
            "input": {"kind": "upload", "upload_id": staged.json()["id"]},
        },
    )
    assert submitted.status_code == 201, submitted.text
    return wait_for_job(client, submitted.json()["id"], timeout=60)


def settled_rss(sampler: RssSampler) -> int:
    time.sleep(0.3)  # the request's last buffers are dropped after the answer
    return sampler.current()


@pytest.mark.parametrize("name", BOMBS)
def test_the_sync_endpoint_refuses_a_decode_bomb_before_it_grows(
    name: str, target: Target, client: httpx.Client, baseline: int, figures: Figures
) -> None:
    data, code = BOMBS[name]

    with RssSampler(target.server.process.pid) as rss:
        response, seconds = transcribe(client, data, f"{name}.bin")
    kept = settled_rss(rss) - baseline

    assert rss.peak - rss.start < MAX_RSS_GROWTH
    assert kept < MAX_RSS_KEPT
    assert seconds < MAX_REFUSAL_SECONDS
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert "Hz" in error["message"]
    figures.worst("bombs.sync_rss_peak_growth_mib", (rss.peak - rss.start) / MIB)
    figures.worst("bombs.sync_rss_kept_mib", kept / MIB)
    figures.worst("bombs.sync_slowest_refusal_seconds", seconds)
    figures.add("bombs.smallest_bytes", min(len(d) for d, _ in BOMBS.values()))


def test_a_plausible_rate_is_refused_at_the_cap_before_the_frame_past_it(
    target: Target, client: httpx.Client, baseline: int, figures: Figures
) -> None:
    # 1 kHz is allowed: 10 frames of 65.5 s are 655 s, over the 600 s cap of `target`.
    data = flac_bomb(1000, frames=10)

    with RssSampler(target.server.process.pid) as rss:
        response, seconds = transcribe(client, data, "frames.flac")
    kept = settled_rss(rss) - baseline

    assert rss.peak - rss.start < MAX_RSS_GROWTH
    assert kept < MAX_RSS_KEPT
    assert seconds < MAX_REFUSAL_SECONDS
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "audio_too_long"
    figures.add("bombs.cap_rss_peak_growth_mib", round((rss.peak - rss.start) / MIB, 1))
    figures.add("bombs.cap_refusal_seconds", round(seconds, 3))
    figures.add("bombs.cap_rss_kept_mib", round(kept / MIB, 1))


@pytest.mark.parametrize("name", BOMBS)
def test_a_batch_job_fails_a_decode_bomb_before_it_grows(
    name: str, target: Target, client: httpx.Client, baseline: int, figures: Figures
) -> None:
    data, code = BOMBS[name]

    with RssSampler(target.server.process.pid) as rss:
        job = run_job(client, data, f"{name}.flac")
    kept = settled_rss(rss) - baseline

    assert rss.peak - rss.start < MAX_RSS_GROWTH
    assert kept < MAX_RSS_KEPT
    assert job["state"] == "failed"
    assert job["error"]["code"] == code
    figures.worst("bombs.batch_rss_peak_growth_mib", (rss.peak - rss.start) / MIB)
    figures.worst("bombs.batch_rss_kept_mib", kept / MIB)


def _poisons() -> dict[str, np.ndarray]:
    seconds = 120
    count = seconds * POISON_RATE
    # Half-second blocks of every float32 that is no sample: quiet, negative and signaling
    # NaN, both infinities, denormals either side of zero (slow arithmetic on most CPUs).
    patterns = [0x7FC00000, 0xFFC00000, 0x7FA00000, 0x7F800000, 0xFF800000, 0x00000001, 0x80000001]
    kinds = np.array(patterns, dtype=np.uint32).view(np.float32)
    block = POISON_RATE // 2
    mixed = np.repeat(np.resize(kinds, count // block + 1), block)[:count]
    return {
        "nan": np.full(count, np.nan, np.float32),
        "+inf": np.full(count, np.inf, np.float32),
        "-inf": np.full(count, -np.inf, np.float32),
        "mixed": mixed,
        "nan-float64": np.full(count // 2, np.nan, np.float64),  # 8 bytes a sample: 60 s
    }


POISONS = _poisons()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return reference(synthesize(SPOKEN), POISON_RATE)


@pytest.mark.parametrize("name", POISONS)
def test_audio_of_nan_or_infinity_is_answered_at_once_with_no_words(
    name: str, client: httpx.Client, figures: Figures
) -> None:
    response, seconds = transcribe(client, wav(POISONS[name], POISON_RATE), f"{name}.wav")

    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["text"] == ""
    assert seconds < MAX_POISON_SECONDS
    figures.worst("poison.slowest_answer_seconds", seconds)


def test_speech_followed_by_nan_is_transcribed_and_the_nan_is_silence(
    client: httpx.Client, speech: np.ndarray, figures: Figures
) -> None:
    samples = np.full(120 * POISON_RATE, np.nan, np.float32)
    samples[POISON_RATE : POISON_RATE + len(speech)] = speech

    response, seconds = transcribe(client, wav(samples, POISON_RATE), "speech-then-nan.wav")

    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert ")))" not in text
    assert word_error_rate(SPOKEN, text) < 0.25
    assert seconds < 2 * MAX_POISON_SECONDS
    figures.add("poison.speech_then_nan_seconds", round(seconds, 2))


def test_speech_with_a_few_nan_and_infinite_samples_keeps_its_words(
    client: httpx.Client, speech: np.ndarray, figures: Figures
) -> None:
    samples = speech.copy()
    spots = np.linspace(POISON_RATE // 10, len(samples) - 1, 24).astype(int)
    samples[spots] = np.resize(np.array([np.nan, np.inf, -np.inf], np.float32), len(spots))

    response, _ = transcribe(client, wav(samples, POISON_RATE), "speech-with-nan.wav")

    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert word_error_rate(SPOKEN, text) < 0.25, text
    figures.add("poison.speech_with_nan_wer", round(word_error_rate(SPOKEN, text), 3))


def test_a_batch_job_of_nan_succeeds_at_once_with_no_words(
    client: httpx.Client, figures: Figures
) -> None:
    data = wav(POISONS["nan"][: 60 * POISON_RATE], POISON_RATE)  # under the 2 MiB staging cap
    started = time.monotonic()

    job = run_job(client, data, "nan.wav")
    seconds = time.monotonic() - started

    assert job["state"] == "succeeded", job
    assert job["result"].get("text", "") == ""  # an empty text is left out
    assert seconds < 2 * MAX_POISON_SECONDS
    figures.add("poison.batch_nan_seconds", round(seconds, 2))

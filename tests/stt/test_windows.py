"""Transcription under lane admission: long audio window by window, interactive work in between."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_config
from tests.speech import BOOK, SENTENCES, passage, word_error_rate
from voxhelm import audio
from voxhelm.audio import Audio
from voxhelm.capacity import Admission
from voxhelm.lanes import INTERACTIVE, NON_INTERACTIVE, scheduler
from voxhelm.stt import windows
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.registry import ENGINES


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every engine call, timed; the calls still run the real engine."""
    calls: list[dict[str, Any]] = []
    real = ENGINES.transcribe

    def spy(audio: Audio, *args: Any, **kwargs: Any) -> Any:
        call: dict[str, Any] = {"seconds": audio.duration, "started": time.monotonic()}
        call["request"] = args[1]
        calls.append(call)
        try:
            return real(audio, *args, **kwargs)
        finally:
            call["ended"] = time.monotonic()

    monkeypatch.setattr(ENGINES, "transcribe", spy)
    yield calls


def tone_with_pauses(seconds: float, pauses: list[float]) -> Audio:
    """A loud tone, silent for 0.4 s at each of ``pauses`` (seconds)."""
    t = np.arange(int(seconds * 16000), dtype=np.float32) / 16000
    samples = 0.5 * np.sin(2 * np.pi * 220 * t).astype(np.float32)
    for pause in pauses:
        samples[int(pause * 16000) : int((pause + 0.4) * 16000)] = 0
    return Audio(samples)


def test_window_bounds_cover_the_audio_and_cut_in_pauses() -> None:
    sound = tone_with_pauses(75, [26.0, 52.5])
    bounds = windows.window_bounds(sound)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(sound.samples)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    cuts = [end / 16000 for _, end in bounds[:-1]]
    assert len(cuts) == 2
    assert 26.0 <= cuts[0] <= 26.4
    assert 52.5 <= cuts[1] <= 52.9


def test_a_short_tail_joins_the_last_window() -> None:
    assert windows.window_bounds(tone_with_pauses(33, [])) == [(0, 33 * 16000)]


def test_short_audio_is_one_engine_call(tmp_path: Path, engine_calls: list[dict[str, Any]]) -> None:
    config = make_config(tmp_path)
    speech = passage()
    decoded = audio.decode(speech.wav_bytes())
    transcript = windows.transcribe(
        decoded, "auto", TranscriptionRequest(), config, admission=Admission(NON_INTERACTIVE)
    )
    assert len(engine_calls) == 1
    assert word_error_rate(speech.text, transcript.text) <= 0.15


@pytest.mark.slow
def test_long_audio_lets_interactive_work_in_between_windows(
    tmp_path: Path, engine_calls: list[dict[str, Any]]
) -> None:
    # No reserved interactive slot: the interactive request must wait for a window to end.
    config = make_config(tmp_path, VOXHELM_LANE_SLOTS="1", VOXHELM_LANE_INTERACTIVE_SLOTS="0")
    # Twelve different sentences: the same passage said over and over is what loop repair
    # exists to question, and this test is about windows.
    speech = passage(BOOK)
    long_audio = audio.decode(speech.wav_bytes())
    assert 45 < long_audio.duration < 2 * windows.WINDOW_SECONDS + windows.MIN_TAIL_SECONDS
    results: dict[str, Any] = {}

    def batch() -> None:
        results["transcript"] = windows.transcribe(
            long_audio, "auto", TranscriptionRequest(), config, admission=Admission(NON_INTERACTIVE)
        )

    thread = threading.Thread(target=batch)
    thread.start()
    deadline = time.monotonic() + 60
    while not engine_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    with scheduler(config.lanes).admit(INTERACTIVE, timeout=60):
        admitted = time.monotonic()
    thread.join(120)
    assert len(engine_calls) == 2
    first, second = engine_calls
    # The interactive request waited for the first window only, not for the whole file.
    assert first["ended"] <= admitted <= second["started"]
    transcript = results["transcript"]
    assert word_error_rate(speech.text, transcript.text) <= 0.15
    assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and starts[-1] > 40
    assert transcript.duration == pytest.approx(long_audio.duration)


def test_digital_silence_is_not_sent_to_the_engine(
    tmp_path: Path, engine_calls: list[dict[str, Any]]
) -> None:
    config = make_config(tmp_path)
    # Zeros (what decoding makes of NaN and infinities) and float dust below 16-bit audio.
    dust = np.full(10 * 16000, 0.4 / 32767, dtype=np.float32)
    dust[::2] *= -1
    for silence in (Audio(np.zeros(10 * 16000, dtype=np.float32)), Audio(dust)):
        transcript = windows.transcribe(
            silence, "auto", TranscriptionRequest(), config, admission=Admission(NON_INTERACTIVE)
        )

        assert transcript.text == ""
        assert transcript.segments == ()
        assert transcript.duration == pytest.approx(10.0)
        assert (transcript.backend, transcript.model) == ("fasterwhisper", "tiny.en")
    assert engine_calls == []


def test_the_silent_windows_of_long_audio_are_skipped(
    tmp_path: Path, engine_calls: list[dict[str, Any]]
) -> None:
    config = make_config(tmp_path)
    speech = passage(SENTENCES[:2])
    spoken = audio.decode(speech.wav_bytes()).samples
    quiet = np.zeros(100 * 16000, dtype=np.float32)
    samples = np.concatenate([quiet, spoken, quiet])

    transcript = windows.transcribe(
        Audio(samples),
        "auto",
        TranscriptionRequest(prompt="Kitchen."),
        config,
        admission=Admission(NON_INTERACTIVE),
    )

    # Only the windows that hold speech reach the engine, the first of them with the prompt.
    assert 1 <= len(engine_calls) <= 2
    assert engine_calls[0]["request"].prompt == "Kitchen."
    assert word_error_rate(speech.text, transcript.text) <= 0.15
    assert transcript.language == "en"
    assert transcript.segments[0].start > 60  # nothing heard in the leading silence
    assert transcript.duration == pytest.approx(len(samples) / 16000)


def test_long_audio_alone_runs_its_windows_side_by_side_on_the_free_slots(
    tmp_path: Path, engine_calls: list[dict[str, Any]]
) -> None:
    config = make_config(tmp_path)  # two shared slots and the reserved interactive one
    speech = passage(BOOK)
    long_audio = audio.decode(speech.wav_bytes())
    transcript = windows.transcribe(
        long_audio, "auto", TranscriptionRequest(), config, admission=Admission(NON_INTERACTIVE)
    )
    assert len(engine_calls) == 2
    first, second = engine_calls
    assert second["started"] < first["ended"] and first["started"] < second["ended"]
    assert word_error_rate(speech.text, transcript.text) <= 0.15
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and starts[-1] > 40


def test_a_spare_slot_is_taken_only_when_one_is_free_now(tmp_path: Path) -> None:
    config = make_config(tmp_path, VOXHELM_LANE_SLOTS="1", VOXHELM_LANE_INTERACTIVE_SLOTS="0")
    lanes = scheduler(config.lanes)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lanes.admit(NON_INTERACTIVE, timeout=5):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    started = time.monotonic()
    with lanes.spare(NON_INTERACTIVE) as ticket:
        assert ticket is None  # held elsewhere: no wait, no slot
    assert time.monotonic() - started < 1.0
    release.set()
    holder.join(10)
    with lanes.spare(NON_INTERACTIVE) as ticket:
        assert ticket is not None and ticket.slot == 0


def test_no_spare_slot_is_taken_while_a_voice_command_runs(tmp_path: Path) -> None:
    config = make_config(tmp_path, VOXHELM_LANE_SLOTS="2", VOXHELM_LANE_INTERACTIVE_SLOTS="1")
    lanes = scheduler(config.lanes)
    taken, release = threading.Event(), threading.Event()

    def command() -> None:
        with lanes.admit(INTERACTIVE, timeout=5) as ticket:
            assert ticket.slot == 2  # the reserved slot
            taken.set()
            release.wait(10)

    voice = threading.Thread(target=command)
    voice.start()
    assert taken.wait(10)
    with lanes.spare(NON_INTERACTIVE) as ticket:
        assert ticket is None  # two shared slots free, but a command is being decoded
    release.set()
    voice.join(10)
    with lanes.spare(NON_INTERACTIVE) as ticket:
        assert ticket is not None

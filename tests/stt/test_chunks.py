"""Long audio in chunks: cuts in pauses, chunks side by side, checkpoints, stopping, stitching.

The audio is real Piper speech (distinct sentences, so loop repair has nothing to question)
and every chunk runs on the real bundled model.
"""

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
from tests.speech import BOOK, EPISODE, passage, word_error_rate
from voxhelm import audio
from voxhelm.audio import Audio
from voxhelm.capacity import Admission
from voxhelm.stt import chunks
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.registry import ENGINES
from voxhelm.transcript import Segment, Transcript

CHUNK_SECONDS = "15"
WORDS = TranscriptionRequest(word_timestamps=True)


class MemoryCheckpoints:
    """Checkpoints in a dict: the store's own behaviour is tested with the artifact stores."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def load_checkpoint(self, name: str) -> bytes | None:
        return self.saved.get(name)

    def save_checkpoint(self, name: str, data: bytes) -> None:
        self.saved[name] = data


@pytest.fixture(scope="module")
def speech() -> Any:
    return passage(BOOK + EPISODE)


@pytest.fixture(scope="module")
def long_audio(speech: Any) -> Audio:
    decoded = audio.decode(speech.wav_bytes())
    assert decoded.duration > 4 * float(CHUNK_SECONDS)
    return decoded


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[float, float, float]]]:
    """(seconds of audio, start, end) of every engine call; the calls run the real engine."""
    calls: list[tuple[float, float, float]] = []
    real = ENGINES.transcribe

    def spy(piece: Audio, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return real(piece, *args, **kwargs)
        finally:
            calls.append((piece.duration, started, time.monotonic()))

    monkeypatch.setattr(ENGINES, "transcribe", spy)
    yield calls


def run_chunks(
    long_audio: Audio,
    request: TranscriptionRequest,
    config: Any,
    checkpoints: chunks.Checkpoints,
    report: Any,
) -> Transcript:
    return chunks.transcribe(
        long_audio,
        "auto",
        request,
        config,
        admission=Admission("non-interactive", 60),
        checkpoints=checkpoints,
        report=report,
    )


def test_chunk_bounds_cover_the_audio_and_cut_in_pauses_between_sentences(
    long_audio: Audio,
) -> None:
    bounds = chunks.chunk_bounds(long_audio, 15.0)
    assert len(bounds) >= 4
    assert bounds[0][0] == 0 and bounds[-1][1] == len(long_audio.samples)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    for _, cut in bounds[:-1]:
        # Piper's pauses between sentences are silent: 50 ms either side of the cut too.
        around = long_audio.samples[cut - 800 : cut + 800]
        assert float(np.abs(around).max()) < 0.01
    for start, end in bounds[:-1]:
        assert 7.5 <= (end - start) / 16000 <= 15.0


def test_audio_a_little_over_the_chunk_length_stays_one_chunk() -> None:
    sound = Audio(np.zeros(24 * 16000, dtype=np.float32))
    assert chunks.chunk_bounds(sound, 20.0) == [(0, len(sound.samples))]


def test_without_any_pause_the_cut_is_the_quietest_moment() -> None:
    t = np.arange(60 * 16000, dtype=np.float32) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    tone[int(17.0 * 16000) : int(17.1 * 16000)] *= 0.01  # a dip too short for VAD's pause
    bounds = chunks.chunk_bounds(Audio(tone), 20.0)
    assert 17.0 <= bounds[0][1] / 16000 <= 17.1


@pytest.mark.slow
def test_chunks_run_side_by_side_and_stitch_into_one_transcript(
    tmp_path: Path, speech: Any, long_audio: Audio, engine_calls: list[tuple[float, float, float]]
) -> None:
    config = make_config(tmp_path, VOXHELM_CHUNK_SECONDS=CHUNK_SECONDS, VOXHELM_CHUNK_WORKERS="2")
    checkpoints = MemoryCheckpoints()
    reports: list[chunks.Progress] = []
    transcript = run_chunks(long_audio, TranscriptionRequest(), config, checkpoints, reports.append)
    count = len(chunks.chunk_bounds(long_audio, 15.0))
    assert len(engine_calls) == count
    # Two chunks were transcribed at the same time at least once.
    assert any(a[1] < b[2] and b[1] < a[2] for a, b in itertools.combinations(engine_calls, 2))
    assert word_error_rate(speech.text, transcript.text) <= 0.1
    assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and starts[-1] > long_audio.duration - 10
    assert transcript.duration == pytest.approx(long_audio.duration)
    assert sorted(checkpoints.saved) == [f"chunk-{i:04d}.json" for i in range(count)]
    done = [report.done_seconds for report in reports]
    assert done == sorted(done) and done[-1] == pytest.approx(long_audio.duration)
    assert reports[-1].eta_seconds == 0.0


@pytest.mark.slow
def test_a_rerun_resumes_from_the_checkpoints_of_finished_chunks(
    tmp_path: Path, long_audio: Audio, engine_calls: list[tuple[float, float, float]]
) -> None:
    config = make_config(tmp_path, VOXHELM_CHUNK_SECONDS=CHUNK_SECONDS, VOXHELM_CHUNK_WORKERS="1")
    checkpoints = MemoryCheckpoints()
    request = TranscriptionRequest()

    class Canceled(Exception):
        pass

    def cancel_after_two_chunks(_progress: chunks.Progress) -> None:
        if len(checkpoints.saved) >= 2:
            raise Canceled

    with pytest.raises(Canceled):
        run_chunks(long_audio, request, config, checkpoints, cancel_after_two_chunks)
    count = len(chunks.chunk_bounds(long_audio, 15.0))
    kept = dict(checkpoints.saved)
    assert 2 <= len(kept) < count  # stopped: the remaining chunks never ran
    calls_before = len(engine_calls)
    assert calls_before < count

    resumed = run_chunks(long_audio, request, config, checkpoints, lambda _progress: None)
    assert len(engine_calls) - calls_before == count - len(kept)  # finished chunks not redone
    assert all(checkpoints.saved[name] == data for name, data in kept.items())
    assert len(checkpoints.saved) == count
    assert resumed.text
    # A different request does not match the checkpoints: a prompt only concerns the first
    # chunk (only it is given the prompt), word timings concern every chunk.
    for changed, redone in ((TranscriptionRequest(prompt="Garden news."), 1), (WORDS, count)):
        calls_before = len(engine_calls)
        run_chunks(long_audio, changed, config, checkpoints, lambda _progress: None)
        assert len(engine_calls) - calls_before == redone


def test_a_stop_reaches_running_chunks_between_windows(tmp_path: Path, long_audio: Audio) -> None:
    config = make_config(tmp_path, VOXHELM_CHUNK_SECONDS=CHUNK_SECONDS, VOXHELM_CHUNK_WORKERS="2")
    started = threading.Event()

    class Stop(Exception):
        pass

    def stop_at_once(_progress: chunks.Progress) -> None:
        started.set()
        raise Stop

    began = time.monotonic()
    with pytest.raises(Stop):
        run_chunks(long_audio, TranscriptionRequest(), config, MemoryCheckpoints(), stop_at_once)
    assert started.is_set()
    # Only the chunks already running finish their window (one each): far less than all.
    assert time.monotonic() - began < 30


def test_a_damaged_checkpoint_is_ignored() -> None:
    assert chunks._restore(b"{not json", "abc") is None
    assert chunks._restore(b'{"fingerprint": "abc", "transcript": {"x": 1}}', "abc") is None
    assert chunks._restore(b'{"fingerprint": "other", "transcript": {}}', "abc") is None


def test_a_checkpoint_round_trips_every_field() -> None:
    piece = Transcript.from_segments(
        [
            Segment(
                0,
                1.0,
                2.5,
                " Hello.",
                seek=100,
                avg_logprob=-0.2,
                tokens=(1, 2),
                flags=("repaired",),
                words=(),
            )
        ],
        language="en",
        duration=30.0,
        backend="fasterwhisper",
        model="tiny.en",
    )
    assert chunks._restore(chunks._dump(piece, "abc"), "abc") == piece


def test_stitching_drops_a_segment_repeated_across_a_cut() -> None:
    first = Transcript.from_segments(
        [Segment(0, 0.0, 2.0, "One."), Segment(1, 18.0, 20.2, "Two.")], "en", 20.0
    )
    second = Transcript.from_segments(
        [Segment(0, 20.0, 20.2, " Two."), Segment(1, 21.0, 23.0, "Three.")], "en", 20.0
    )
    stitched = chunks.stitch([first, second], 40.0)
    assert [s.text.strip() for s in stitched.segments] == ["One.", "Two.", "Three."]
    assert [s.id for s in stitched.segments] == [0, 1, 2]
    assert stitched.text == "One. Two. Three."

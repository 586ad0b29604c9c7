"""Windows cut in pauses that Silero VAD hears, by a caller's rules (OpenAI's server_vad).

The audio is real Piper speech laid out with pauses of known lengths between sentences,
so where a cut falls can be checked against where the pauses are.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_config
from tests.speech import BOOK, EPISODE, HEARD_SYNTHESIS, passage, synthesize, word_error_rate
from voxhelm import audio
from voxhelm.audio import Audio
from voxhelm.capacity import Admission
from voxhelm.lanes import NON_INTERACTIVE
from voxhelm.stt import windows
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.registry import ENGINES
from voxhelm.stt.windows import SpeechPauses

SHORT, LONG = 0.3, 1.2  # seconds of silence after a sentence
RATE = 16000
SPEECH_LEVEL = 300  # int16: above Piper's quiet, below any spoken sound


@dataclass(frozen=True)
class Layout:
    """Sentences spoken one after another, each followed by silence of a known length."""

    audio: Audio
    pauses: list[tuple[float, float]]  # (where a sentence's speech ends, where the next begins)
    silences: list[float]  # the silence laid after each sentence, in seconds

    def pause_of(self, cut: int) -> int | None:
        """Which pause the sample offset ``cut`` lies in (give or take a tenth of a second:
        Silero hears in 32 ms frames, and a sound fades in), or None: in speech."""
        seconds = cut / RATE
        for index, (quiet, speech) in enumerate(self.pauses):
            if quiet - 0.1 <= seconds <= speech + 0.1:
                return index
        return None


def laid_out(sentences: tuple[str, ...], silences: list[float]) -> Layout:
    """Each sentence with Piper's own quiet before and after it cut off (its length varies
    from one rendering to the next), then exactly ``silence`` seconds of digital silence."""
    parts, pauses, at = [], [], 0.0
    for text, silence in zip(sentences, silences, strict=True):
        spoken = synthesize(text)
        loud = np.flatnonzero(np.abs(spoken.samples.astype(np.int32)) > SPEECH_LEVEL)
        samples = spoken.samples[loud[0] : loud[-1] + 1]
        pad = np.zeros(int(silence * spoken.sample_rate), dtype=samples.dtype)
        parts.append(np.concatenate([samples, pad]))
        at += len(samples) / spoken.sample_rate
        pauses.append((at, at + len(pad) / spoken.sample_rate))
        at = pauses[-1][1]
    first = synthesize(sentences[0])
    speech = type(first)(" ".join(sentences), np.concatenate(parts), first.sample_rate)
    return Layout(audio.decode(speech.wav_bytes()), pauses, silences)


@pytest.fixture(scope="module")
def three() -> Layout:
    """A sentence, a long pause, a sentence, a short pause, a sentence."""
    return laid_out(EPISODE[:3], [LONG, SHORT, 0.0])


@pytest.fixture(scope="module")
def stretch(three: Layout) -> tuple[int, int]:
    """Where a cut is looked for: from a second before the long pause to a second into the
    last sentence, so both pauses lie inside."""
    (long_starts, _), (_, last_begins) = three.pauses[0], three.pauses[1]
    return int((long_starts - 1.0) * RATE), int((last_begins + 1.0) * RATE)


def cut(layout: Layout, stretch: tuple[int, int], **rules: Any) -> int:
    return windows.pause_cut(layout.audio, *stretch, SpeechPauses(**rules))


def test_a_cut_sits_in_the_latest_pause_at_least_as_long_as_asked(
    three: Layout, stretch: tuple[int, int]
) -> None:
    assert three.pause_of(cut(three, stretch, silence_ms=200)) == 1  # the short one, later
    assert three.pause_of(cut(three, stretch, silence_ms=800)) == 0  # only the long one is
    # Longer than any pause here: the quietest moment, as without rules.
    assert cut(three, stretch, silence_ms=2000) == windows.quietest(three.audio, *stretch)


def test_prefix_padding_is_the_quiet_kept_before_the_next_speech(
    three: Layout, stretch: tuple[int, int]
) -> None:
    near = cut(three, stretch, silence_ms=800, prefix_padding_ms=300)
    far = cut(three, stretch, silence_ms=800, prefix_padding_ms=900)
    assert three.pause_of(near) == three.pause_of(far) == 0
    # Silero hears in 32 ms frames, from where the margin before the stretch begins.
    assert (near - far) / RATE == pytest.approx(0.6, abs=0.04)
    _, next_speech = three.pauses[0]
    assert next_speech - 0.3 - 0.1 <= near / RATE <= next_speech  # Silero hears in 32 ms frames
    # Asked for more than the pause holds: the cut is where the speech before it ended.
    whole = cut(three, stretch, silence_ms=800, prefix_padding_ms=3000)
    speech_ended, _ = three.pauses[0]
    assert whole / RATE == pytest.approx(speech_ended, abs=0.25)


def test_a_threshold_of_zero_hears_speech_everywhere(
    three: Layout, stretch: tuple[int, int]
) -> None:
    # Every frame reaches a speech probability of 0, so there is no pause to cut in.
    assert cut(three, stretch, threshold=0.0) == windows.quietest(three.audio, *stretch)
    assert three.pause_of(cut(three, stretch, threshold=0.5)) == 0


def test_a_longer_silence_moves_every_cut_of_a_long_recording_into_long_pauses() -> None:
    sentences = BOOK + EPISODE
    layout = laid_out(sentences, [LONG if i % 2 else SHORT for i in range(len(sentences))])
    assert layout.audio.duration > 2 * windows.WINDOW_SECONDS + windows.MIN_TAIL_SECONDS

    def cuts(**rules: Any) -> list[int]:
        bounds = windows.window_bounds(layout.audio, pauses=SpeechPauses(**rules))
        assert bounds[0][0] == 0 and bounds[-1][1] == len(layout.audio.samples)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        return [end for _, end in bounds[:-1]]

    def long_pause_within(begin: float, end: float) -> bool:
        return any(
            begin <= quiet and speech <= end and silence == LONG
            for (quiet, speech), silence in zip(layout.pauses, layout.silences, strict=True)
        )

    # Piper's sentence lengths vary from session to session, so a window's search stretch
    # may hold no long pause (then the cut is the quietest moment); where it holds one, the
    # cut is in a long pause.
    start, in_long = 0.0, 0
    for end in cuts(silence_ms=800):
        stretch = start + windows.WINDOW_SECONDS - windows.SEARCH_SECONDS
        if long_pause_within(stretch, start + windows.WINDOW_SECONDS):
            index = layout.pause_of(end)
            assert index is not None and layout.silences[index] == LONG
            in_long += 1
        start = end / RATE
    assert in_long
    # No pause of 5 s: every cut falls where the cutter without rules puts it.
    assert cuts(silence_ms=5000) == [end for _, end in windows.window_bounds(layout.audio)[:-1]]


@pytest.mark.slow
def test_pauses_cut_long_audio_even_with_the_scheduler_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, VOXHELM_LANE_SCHEDULER_ENABLED="false")
    calls: list[float] = []
    real = ENGINES.transcribe

    def spy(piece: Audio, *args: Any, **kwargs: Any) -> Any:
        calls.append(piece.duration)
        return real(piece, *args, **kwargs)

    monkeypatch.setattr(ENGINES, "transcribe", spy)
    rules = SpeechPauses(silence_ms=400, prefix_padding_ms=200)
    batch = Admission(NON_INTERACTIVE)
    short = passage()
    heard = windows.transcribe(
        audio.decode(short.wav_bytes()),
        "auto",
        TranscriptionRequest(),
        config,
        admission=batch,
        pauses=rules,
    )
    assert len(calls) == 1  # one window: nothing to cut
    assert word_error_rate(short.text, heard.text) <= HEARD_SYNTHESIS

    calls.clear()
    long = passage(BOOK)
    decoded = audio.decode(long.wav_bytes())
    assert decoded.duration > windows.WINDOW_SECONDS + windows.MIN_TAIL_SECONDS
    heard = windows.transcribe(
        decoded, "auto", TranscriptionRequest(), config, admission=batch, pauses=rules
    )
    assert len(calls) == 2
    assert sum(calls) == pytest.approx(decoded.duration)
    assert word_error_rate(long.text, heard.text) <= HEARD_SYNTHESIS

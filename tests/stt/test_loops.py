"""Loop repair: the detector on recorded degenerate and clean segments, the repair outcomes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from tests.speech import passage, word_error_rate
from voxhelm import audio
from voxhelm.formats import render
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.faster_whisper import FasterWhisperBackend
from voxhelm.stt.loops import (
    DROPPED,
    REPAIRED,
    SUSPECT,
    Reason,
    compression_ratio,
    find_degenerate,
    find_windows,
    repair_loops,
)
from voxhelm.transcript import Segment, Transcript


def seg(
    index: int,
    start: float,
    end: float,
    text: str,
    cr: float | None = 1.3,
    nsp: float | None = 0.01,
    lp: float | None = -0.25,
    t: float = 0.0,
) -> Segment:
    return Segment(
        index,
        start,
        end,
        text,
        avg_logprob=lp,
        compression_ratio=cr,
        no_speech_prob=nsp,
        temperature=t,
    )


def numbered(*segments: Segment) -> list[Segment]:
    return [dataclasses.replace(s, id=i) for i, s in enumerate(segments)]


FOX = "The quip brown fox jumps over the lazy dog."
GARDEN = "We recorded a new episode about gardening in the spring."

# Recorded from the multilingual base model (faster-whisper, int8 on CPU, language=en,
# condition_on_previous_text=True) on the Piper passage followed by 60 s of a modulated chord:
# over the music it loops back to the first sentence.
MUSIC_LOOP = numbered(
    seg(0, 0.00, 3.28, FOX, 1.32, 0.00, -0.25),
    seg(0, 3.28, 6.80, "Please turn on the kitchen lights and open the garden door.", 1.32, 0.00),
    seg(0, 6.80, 10.48, GARDEN, 1.32, 0.00, -0.25),
    seg(0, 10.48, 20.48, FOX, 1.61, 0.81, -0.70, 0.4),
    seg(0, 20.48, 28.48, FOX, 1.61, 0.81, -0.70, 0.4),
    seg(0, 28.48, 38.48, FOX, 1.61, 0.78, -0.20),
    seg(0, 38.48, 48.48, FOX, 1.61, 0.78, -0.20),
    seg(0, 48.48, 58.48, FOX, 1.61, 0.62, -0.14),
    seg(0, 58.48, 70.48, FOX, 1.61, 0.62, -0.14),
)

# Recorded from the base model on the Piper passage said three times under noise at about
# 0 dB SNR: one sentence repeated every 2 s, and a window compression ratio of 10.57 (every
# temperature of the fallback failed).
_NOISE_BOUNDS = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0)
NOISE_LOOP = numbered(
    *(
        seg(0, start, end, GARDEN, 10.57, 0.53, -0.11, 1.0)
        for start, end in itertools.pairwise(_NOISE_BOUNDS)
    ),
    seg(0, 28.0, 31.0, "We recorded a new episode about driving in the spring.", 0.92, 0.05, -0.49),
)

# Recorded from tiny.en on 40 Piper "Thank you."s: one segment, compression ratio 30.33.
THANK_YOU_WINDOW = seg(0, 0.0, 28.33, "Thank you, " * 39 + "thank you.", 30.33, 0.30, -0.11, 1.0)

# The classic short loop at the end of a recording, with unremarkable statistics.
THANK_YOU_SHORT = seg(0, 41.2, 44.0, "Thank you. Thank you. Thank you. Thank you.", 1.5, 0.2, -0.4)

# Real segments of the Piper passage: tiny.en (the bundled model) and base.
CLEAN_TINY = numbered(
    seg(0, 0.00, 3.56, "the quick brown fox jumps over the lazy dog.", 1.34, 0.01, -0.20),
    seg(0, 3.56, 6.96, "Please turn on the kitchen lights and open the garden door.", 1.34, 0.01),
    seg(0, 6.96, 9.72, GARDEN, 1.34, 0.01, -0.20),
)
CLEAN_BASE = numbered(
    seg(0, 0.00, 3.40, "The quick brown fox jumps over the lazy dog.", 1.32, 0.00, -0.23),
    seg(0, 3.40, 6.84, "Please turn on the kitchen lights and open the garden door.", 1.32, 0.00),
    seg(0, 6.84, 10.36, GARDEN, 1.32, 0.00, -0.23),
    seg(0, 10.80, 14.60, "My sister bought a red bicycle at the market on Saturday.", 1.58),
    seg(0, 14.60, 18.10, "The train to the airport leaves every 20 minutes.", 1.58),
    seg(0, 18.10, 21.60, "Our neighbors are painting their fence of bright shade of blue.", 1.58),
)


class Redecoder:
    """Stands in for the engine's re-decode: which windows are asked for is what is tested."""

    def __init__(self, *answers: Sequence[Segment]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[float, float]] = []

    def __call__(self, start: float, end: float) -> list[Segment]:
        self.calls.append((start, end))
        return list(self.answers.pop(0))


# -- the detector ---------------------------------------------------------------------------


def test_it_flags_a_phrase_repeated_within_a_segment() -> None:
    assert find_degenerate([THANK_YOU_SHORT]) == {0: (Reason.REPEATED_PHRASE,)}
    assert find_degenerate([THANK_YOU_WINDOW]) == {
        0: (Reason.REPEATED_PHRASE, Reason.COMPRESSION_RATIO)
    }


def test_it_flags_a_sentence_repeated_across_segments() -> None:
    found = find_degenerate(MUSIC_LOOP)
    assert sorted(found) == [3, 4, 5, 6, 7, 8]
    assert all(Reason.REPEATS_PREVIOUS in reasons for reasons in found.values())
    windows = find_windows(MUSIC_LOOP)
    assert [(w.first, w.last) for w in windows] == [(3, 8)]
    # Padding reaches back only to the end of the clean segment before.
    assert windows[0].start == pytest.approx(10.48)
    assert windows[0].end == pytest.approx(70.98)


def test_it_flags_a_whole_window_whose_compression_ratio_is_too_high() -> None:
    found = find_degenerate(NOISE_LOOP)
    assert sorted(found) == list(range(13))
    assert found[0] == (Reason.COMPRESSION_RATIO,)
    assert found[1] == (Reason.REPEATS_PREVIOUS, Reason.COMPRESSION_RATIO)
    assert [(w.first, w.last, w.start, w.end) for w in find_windows(NOISE_LOOP)] == [
        (0, 12, 0.0, 28.0)
    ]


def test_it_computes_the_compression_ratio_of_the_text_itself() -> None:
    text = "We will be right back after this short break. " * 5
    assert compression_ratio(text) > 2.4
    assert compression_ratio(GARDEN) < 1.5
    found = find_degenerate([seg(0, 0.0, 9.0, text, cr=None)])
    assert found == {0: (Reason.COMPRESSION_RATIO,)}


def test_it_flags_text_over_no_speech() -> None:
    hallucination = seg(0, 30.0, 32.0, "Thanks for watching!", nsp=0.85, lp=-1.3)
    assert find_degenerate([hallucination]) == {0: (Reason.TEXT_OVER_NO_SPEECH,)}
    confident = seg(0, 30.0, 32.0, "Thanks for watching!", nsp=0.85, lp=-0.4)
    assert find_degenerate([confident]) == {}


@pytest.mark.parametrize("segments", [CLEAN_TINY, CLEAN_BASE], ids=["tiny.en", "base"])
def test_it_finds_nothing_in_clean_speech(segments: list[Segment]) -> None:
    assert find_degenerate(segments) == {}


def test_it_leaves_ordinary_repetition_in_dialogue_alone() -> None:
    dialogue = numbered(
        seg(0, 0.0, 0.5, "Yes."),
        seg(0, 0.5, 1.0, "Yes."),
        seg(0, 1.0, 2.0, "No, no, no."),
        seg(0, 2.0, 3.0, "Thank you."),
        seg(0, 3.0, 4.0, "Of course."),
        seg(0, 4.0, 5.0, "Thank you."),
        seg(0, 5.0, 6.0, "Very, very good."),
        seg(0, 6.0, 6.5, ""),
        seg(0, 6.5, 7.0, "", nsp=0.9, lp=-1.5),
    )
    assert find_degenerate(dialogue) == {}


# -- the repair -----------------------------------------------------------------------------


def test_it_does_not_call_redecode_when_nothing_is_degenerate() -> None:
    redecode = Redecoder()
    assert repair_loops(CLEAN_BASE, redecode) == CLEAN_BASE
    assert redecode.calls == []


def test_it_replaces_a_loop_with_a_clean_redecode(caplog: pytest.LogCaptureFixture) -> None:
    loop = dataclasses.replace(THANK_YOU_SHORT, id=3, start=9.72, end=12.5)
    clean = [
        seg(0, 9.72, 11.0, "Thank you for listening."),
        seg(0, 11.0, 12.6, "See you next week."),
    ]
    redecode = Redecoder(clean)
    with caplog.at_level(logging.INFO, logger="voxhelm.stt"):
        repaired = repair_loops([*CLEAN_TINY, loop], redecode)
    # Padded after the loop (nothing follows), not back into the segment before it.
    assert redecode.calls == [(9.72, 13.0)]
    assert repaired[:3] == CLEAN_TINY
    assert [s.text for s in repaired[3:]] == ["Thank you for listening.", "See you next week."]
    assert all(s.flags == (REPAIRED,) for s in repaired[3:])
    assert "loop repair: repaired 9.72-13.00s (segments 3-3: repeated_phrase)" in caplog.text


def test_it_pads_a_window_into_a_gap_before_it() -> None:
    redecode = Redecoder([seg(0, 41.0, 43.9, "Thank you for listening.")])
    repair_loops([*CLEAN_TINY, dataclasses.replace(THANK_YOU_SHORT, id=3)], redecode)
    assert redecode.calls == [(40.7, 44.5)]


def test_it_keeps_the_better_of_two_loops_and_marks_it_suspect() -> None:
    still_looping = [seg(0, 41.2, 44.0, "Thank you. Thank you. Thank you. Thank you. Thank you.")]
    repaired = repair_loops([THANK_YOU_SHORT], Redecoder(still_looping))
    assert repaired == [dataclasses.replace(THANK_YOU_SHORT, flags=(SUSPECT,))]


def test_it_prefers_a_redecode_with_fewer_findings() -> None:
    fewer = [seg(0, 0.0, 28.33, "Thank you, thank you, thank you, thank you.")]  # no ratio issue
    repaired = repair_loops([THANK_YOU_WINDOW], Redecoder(fewer))
    assert [(s.text, s.flags) for s in repaired] == [(fewer[0].text, (SUSPECT,))]


def test_it_keeps_speech_that_really_repeats_over_a_redecode_that_misses_some() -> None:
    # A passage read twice: the second reading repeats the first. A re-decode that leaves
    # out one sentence has fewer findings, but it lost speech, so the original stays.
    looped = numbered(
        seg(0, 0.0, 3.0, GARDEN),
        seg(0, 3.0, 6.0, "The quick brown fox jumps over the lazy dog."),
        seg(0, 6.0, 9.0, GARDEN),
        seg(0, 9.0, 12.0, "The quick brown fox jumps over the lazy dog."),
    )
    missed_one = [seg(0, 6.0, 9.0, GARDEN)]
    repaired = repair_loops(looped, Redecoder(missed_one))
    assert [s.text for s in repaired] == [s.text for s in looped]
    assert [s.flags for s in repaired[2:]] == [(SUSPECT,), (SUSPECT,)]


def test_it_drops_text_where_the_redecode_hears_no_speech() -> None:
    repaired = repair_loops(MUSIC_LOOP, Redecoder([]))
    assert repaired[:3] == MUSIC_LOOP[:3]
    assert len(repaired) == len(MUSIC_LOOP)
    assert all(s.text == "" and s.flags == (DROPPED,) for s in repaired[3:])
    assert [s.start for s in repaired[3:]] == [s.start for s in MUSIC_LOOP[3:]]
    transcript = Transcript.from_segments(repaired, language="en", duration=70.5)
    assert transcript.text.count("fox") == 1


def test_it_judges_the_redecode_against_the_segments_before_it() -> None:
    # Re-decoding the second copy of a sentence gives the same sentence again: still a loop.
    looped = numbered(seg(0, 0.0, 3.0, GARDEN), seg(0, 3.0, 6.0, GARDEN))
    repaired = repair_loops(looped, Redecoder([seg(0, 3.0, 6.0, GARDEN)]))
    assert repaired[0] == looped[0]
    assert repaired[1].flags == (SUSPECT,)


# -- end to end on the real model -----------------------------------------------------------


class LoopingFirstPass:
    """The real tiny.en model, except that its first pass claims a loop.

    faster-whisper does not loop reliably on audio that can be made here (its own temperature
    fallback catches most loops, and the ones that slip through depend on sampling), so the
    first pass is rewritten to repeat its first sentence over the rest of the passage, as a
    real loop does. Every re-decode is the real model on the real audio.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.model = real.model  # is_multilingual, read by the engine
        self.calls = 0

    def transcribe(self, samples: Any, **options: Any) -> tuple[Any, Any]:
        self.calls += 1
        segments, info = self.real.transcribe(samples, **options)
        if self.calls > 1:
            return segments, info
        segments = list(segments)
        looped = [dataclasses.replace(s, text=segments[0].text) for s in segments]
        return iter(looped), info


@pytest.mark.slow
def test_the_engine_repairs_a_loop_and_verbose_json_shows_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from tests.conftest import make_config

    engine = FasterWhisperBackend(make_config().stt.fasterwhisper, tmp_path_factory.mktemp("m"))
    engine._model = LoopingFirstPass(engine._loaded_model())
    speech = passage()
    transcript = engine.transcribe(audio.decode(speech.wav_bytes()), TranscriptionRequest())

    assert engine._model.calls == 2  # the first pass, and one re-decode for one window
    assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))
    assert transcript.segments[0].flags == ()
    assert all(s.flags == (REPAIRED,) for s in transcript.segments[1:])
    assert word_error_rate(speech.text, transcript.text) <= 0.10
    payload = json.loads(render(transcript, "verbose_json").body)
    assert "voxhelm_flags" not in payload["segments"][0]
    assert payload["segments"][1]["voxhelm_flags"] == ["repaired"]

"""The neutral transcript model: construction, speakers, shifting and renumbering."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from voxhelm.formats.timestamps import to_milliseconds
from voxhelm.transcript import Segment, Transcript, Word


@pytest.fixture
def transcript() -> Transcript:
    return Transcript.from_segments(
        [
            Segment(
                0,
                0.0,
                1.5,
                " Hello there. ",
                seek=0,
                words=(Word(0.0, 0.6, " Hello", 0.9), Word(0.6, 1.5, " there.", 0.8)),
            ),
            Segment(1, 1.5, 3.25, "Hi!"),
        ],
        language="en",
        duration=3.25,
        backend="fasterwhisper",
        model="tiny.en",
    )


def test_it_joins_stripped_segment_texts_with_one_space(transcript: Transcript) -> None:
    assert transcript.text == "Hello there. Hi!"


def test_it_skips_blank_segments_when_joining_text() -> None:
    built = Transcript.from_segments(
        [Segment(0, 0, 1, "a"), Segment(1, 1, 2, "   "), Segment(2, 2, 3, "b")],
        language=None,
        duration=None,
    )
    assert built.text == "a b"


def test_it_keeps_metadata_and_segments_as_a_tuple(transcript: Transcript) -> None:
    assert isinstance(transcript.segments, tuple)
    assert (transcript.language, transcript.duration) == ("en", 3.25)
    assert (transcript.backend, transcript.model, transcript.task) == (
        "fasterwhisper",
        "tiny.en",
        "transcribe",
    )


def test_it_is_immutable(transcript: Transcript) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        transcript.text = "changed"  # type: ignore[misc]


def test_it_collects_words_in_order(transcript: Transcript) -> None:
    assert [w.word for w in transcript.words] == [" Hello", " there."]


def test_it_assigns_speakers_per_segment(transcript: Transcript) -> None:
    labelled = transcript.with_speakers(["Speaker 1", "Speaker 2"])
    assert [s.speaker for s in labelled.segments] == ["Speaker 1", "Speaker 2"]
    assert [s.speaker for s in transcript.segments] == [None, None]
    assert labelled.text == transcript.text


def test_it_treats_blank_speaker_labels_as_none(transcript: Transcript) -> None:
    labelled = transcript.with_speakers(["  ", None])
    assert [s.speaker for s in labelled.segments] == [None, None]


def test_it_refuses_a_speaker_list_of_the_wrong_length(transcript: Transcript) -> None:
    with pytest.raises(ValueError, match="1 speaker labels for 2 segments"):
        transcript.with_speakers(["Speaker 1"])


def test_it_shifts_segment_word_and_seek_times(transcript: Transcript) -> None:
    shifted = transcript.shifted(30.0)
    first, second = shifted.segments
    assert (first.start, first.end, first.seek) == (30.0, 31.5, 3000)
    assert [(w.start, w.end) for w in first.words] == [(30.0, 30.6), (30.6, 31.5)]
    assert (second.start, second.end, second.seek) == (31.5, 33.25, None)
    assert second.seek_frames == 3150
    assert shifted.duration == transcript.duration
    assert shifted.text == transcript.text


def test_it_renumbers_segments_from_zero() -> None:
    stitched = Transcript(
        text="a b",
        language="en",
        duration=None,
        segments=(Segment(7, 0, 1, "a"), Segment(3, 1, 2, "b")),
    )
    assert [s.id for s in stitched.renumbered().segments] == [0, 1]
    assert [s.text for s in stitched.renumbered().segments] == ["a", "b"]


def test_a_segment_keeps_its_text_without_surrounding_whitespace() -> None:
    # Text joined from words (a segment cut at a speaker change) opens with a word's space.
    words = (Word(0.0, 0.5, " know"), Word(0.5, 0.9, " I"), Word(0.9, 1.3, " heard"))
    cut = Segment(0, 0.0, 1.3, "".join(w.word for w in words), words=words)
    assert cut.text == "know I heard"
    assert [w.word for w in cut.words] == [" know", " I", " heard"]  # words keep theirs
    assert dataclasses.replace(cut, text="\n  Hi there.\t").text == "Hi there."


def test_times_are_whole_milliseconds_wherever_a_segment_is_made() -> None:
    # 1.34 placed at a window's 6.0 s offset is 7.339999999999996 in floats.
    noisy = Segment(0, 1.34, 2.0000001, "x", words=(Word(1.34, 1.6789, " x"),)).shifted(6.0)
    assert (noisy.start, noisy.end) == (7.34, 8.0)
    assert [(w.start, w.end) for w in noisy.words] == [(7.34, 7.679)]
    assert json.dumps([noisy.start, noisy.end]) == "[7.34, 8.0]"
    # Engines hand over numpy scalars; artifacts get plain floats.
    from_numpy = Segment(0, np.float64(0.1) + np.float64(0.2), np.float32(1.1), "x")
    assert (from_numpy.start, from_numpy.end) == (0.3, 1.1)
    assert type(from_numpy.start) is float and type(from_numpy.end) is float
    word = Word(np.float32(0.29), np.float64(0.5), " x")
    assert (word.start, word.end) == (0.29, 0.5) and type(word.start) is float
    # The formats' own rounding (half to even on the product): a JSON time and a cue agree.
    assert Segment(0, 0.0025, 0.0015, "x").start * 1000 == to_milliseconds(0.0025)


def test_it_defaults_seek_to_truncated_centiseconds() -> None:
    assert Segment(0, 0.29, 1.0, "x").seek_frames == 28


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_it_rejects_non_finite_timestamps(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        Segment(0, bad, 1.0, "x")
    with pytest.raises(ValueError, match="finite"):
        Segment(0, 0.0, bad, "x")
    with pytest.raises(ValueError, match="finite"):
        Word(bad, 1.0, "x")


def test_a_correction_renames_then_sets_texts_and_speakers(transcript: Transcript) -> None:
    labeled = transcript.with_speakers(["Speaker 1", "Speaker 2"])
    corrected = labeled.corrected(
        names={"Speaker 1": "Anna", "Speaker 2": "Ben"},
        texts={1: "  Hi, Anna!  "},
        speakers={0: "Cleo"},
    )
    assert [s.speaker for s in corrected.segments] == ["Cleo", "Ben"]
    assert corrected.segments[1].text == "Hi, Anna!"  # no leading space before, none after
    assert corrected.text == "Hello there. Hi, Anna!"
    assert corrected.speakers == ("Cleo", "Ben")
    # An unchanged text keeps its word timings; timings of every segment stay.
    assert corrected.segments[0].words == transcript.segments[0].words
    assert [(s.start, s.end) for s in corrected.segments] == [(0.0, 1.5), (1.5, 3.25)]


def test_a_corrected_text_drops_the_machine_words_and_is_trimmed(
    transcript: Transcript,
) -> None:
    corrected = transcript.corrected(texts={0: " Hallo there. "})
    assert corrected.segments[0].text == "Hallo there."
    assert corrected.segments[0].words == ()

"""Turns → segment labels: normalization, largest overlap, splitting at speaker changes."""

from __future__ import annotations

import pytest

from voxhelm.diarization.align import (
    NO_OVERLAP,
    NO_TURNS,
    label_transcript,
    normalize_turns,
    speaker_at,
)
from voxhelm.diarization.base import DiarizationError, Turn
from voxhelm.transcript import Segment, Transcript, Word


def words_of(*spec: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(start, end, f" {text}") for start, end, text in spec)


def segment(index: int, start: float, end: float, text: str, **fields: object) -> Segment:
    return Segment(id=index, start=start, end=end, text=text, **fields)  # type: ignore[arg-type]


def transcript_of(*segments: Segment) -> Transcript:
    return Transcript.from_segments(segments, "en", None)


def test_it_names_speakers_in_order_of_first_appearance() -> None:
    turns = normalize_turns(
        [Turn(5.0, 6.0, "SPEAKER_00"), Turn(1.0, 2.0, "SPEAKER_07"), Turn(3.0, 4.0, "SPEAKER_00")]
    )
    assert [(t.start, t.speaker) for t in turns] == [
        (1.0, "Speaker 1"),
        (3.0, "Speaker 2"),
        (5.0, "Speaker 2"),
    ]


def test_it_drops_blank_labels_and_empty_turns_and_clamps_negative_times() -> None:
    turns = normalize_turns(
        [Turn(-0.5, 1.0, "a"), Turn(2.0, 2.0, "b"), Turn(3.0, 2.5, "c"), Turn(4.0, 5.0, "  ")]
    )
    assert turns == [Turn(0.0, 1.0, "Speaker 1")]


def test_it_refuses_when_no_usable_turn_is_left() -> None:
    with pytest.raises(DiarizationError, match=NO_TURNS):
        normalize_turns([Turn(1.0, 1.0, "a"), Turn(2.0, 3.0, "")])
    with pytest.raises(DiarizationError, match=NO_TURNS):
        normalize_turns([])


def test_it_picks_the_speaker_with_the_largest_total_overlap() -> None:
    turns = [Turn(0.0, 1.0, "A"), Turn(1.0, 1.6, "B"), Turn(1.6, 3.0, "A")]
    # A talks 0.5 + 0.5 s of the segment and B 0.6 s: the reference's single-longest-turn
    # rule (a flaw) said B.
    assert speaker_at(0.5, 2.1, turns) == "A"
    assert speaker_at(1.0, 1.6, turns) == "B"
    assert speaker_at(3.0, 4.0, turns) is None


def test_it_breaks_overlap_ties_by_the_earlier_turn() -> None:
    turns = [Turn(1.0, 2.0, "B"), Turn(0.0, 1.0, "A")]
    assert speaker_at(0.5, 1.5, turns) == "A"


def test_it_labels_segments_and_leaves_zero_length_and_unmatched_ones_unlabeled() -> None:
    transcript = transcript_of(
        segment(0, 0.0, 1.5, " Hello there."),
        segment(1, 1.5, 3.25, " Hi!"),
        segment(2, 4.0, 4.0, " Empty."),
        segment(3, 9.0, 10.0, " Nobody."),
    )
    turns = normalize_turns([Turn(0.0, 1.5, "x"), Turn(1.5, 3.3, "y"), Turn(3.9, 4.1, "x")])
    labeled = label_transcript(transcript, turns)
    assert [s.speaker for s in labeled.segments] == ["Speaker 1", "Speaker 2", None, None]
    assert labeled.text == transcript.text


def test_it_fails_when_no_segment_overlaps_a_turn() -> None:
    transcript = transcript_of(segment(0, 0.0, 1.0, " Hello."))
    with pytest.raises(DiarizationError, match=NO_OVERLAP):
        label_transcript(transcript, normalize_turns([Turn(5.0, 6.0, "a")]))


def test_it_splits_a_segment_at_the_word_boundary_nearest_the_speaker_change() -> None:
    words = words_of(
        (0.0, 0.4, "How"),
        (0.4, 0.7, "are"),
        (0.7, 1.2, "you"),
        (1.2, 1.6, "today?"),
        (1.9, 2.3, "Fine,"),
        (2.3, 2.6, "thanks"),
        (2.6, 3.0, "a"),
        (3.0, 3.4, "lot."),
    )
    transcript = transcript_of(
        segment(0, 0.0, 3.5, " How are you today? Fine, thanks a lot.", words=words, seek=0)
    )
    # The change is at 1.75 s; "today?" ends at 1.6 and "Fine," starts at 1.9.
    turns = normalize_turns([Turn(0.0, 1.75, "a"), Turn(1.75, 3.5, "b")])
    labeled = label_transcript(transcript, turns)
    assert [(s.id, s.start, s.end, s.text, s.speaker) for s in labeled.segments] == [
        (0, 0.0, 1.6, "How are you today?", "Speaker 1"),  # no word's space leads a piece
        (1, 1.9, 3.5, "Fine, thanks a lot.", "Speaker 2"),
    ]
    assert labeled.segments[0].seek == 0
    assert labeled.segments[1].seek is None  # renderers derive it from the new start
    assert labeled.text == transcript.text


def test_it_keeps_a_short_blip_inside_its_sentence() -> None:
    words = words_of(
        (0.0, 0.5, "We"),
        (0.5, 1.0, "planted"),
        (1.0, 1.4, "three"),
        (1.4, 1.8, "apple"),
        (1.8, 2.3, "trees"),
        (2.3, 2.8, "last"),
        (2.8, 3.4, "autumn."),
    )
    transcript = transcript_of(
        segment(0, 0.0, 3.4, " We planted three apple trees last autumn.", words=words)
    )
    # A misplaced 0.5 s turn of another speaker covering one word must not cut the sentence.
    turns = normalize_turns([Turn(0.0, 1.4, "a"), Turn(1.4, 1.8, "b"), Turn(1.8, 3.4, "a")])
    labeled = label_transcript(transcript, turns)
    assert [(s.text, s.speaker) for s in labeled.segments] == [
        ("We planted three apple trees last autumn.", "Speaker 1")
    ]


def test_it_does_not_split_a_short_reply_of_fewer_than_three_words() -> None:
    words = words_of(
        (0.0, 0.5, "Is"),
        (0.5, 0.9, "it"),
        (0.9, 1.4, "ready?"),
        (1.6, 2.4, "Yes."),
    )
    transcript = transcript_of(segment(0, 0.0, 2.4, " Is it ready? Yes.", words=words))
    turns = normalize_turns([Turn(0.0, 1.5, "a"), Turn(1.5, 2.4, "b")])
    labeled = label_transcript(transcript, turns)
    assert len(labeled.segments) == 1
    assert labeled.segments[0].speaker == "Speaker 1"


def test_it_can_label_without_splitting() -> None:
    words = words_of(*[(i * 0.5, i * 0.5 + 0.5, f"w{i}") for i in range(8)])
    transcript = transcript_of(segment(0, 0.0, 4.0, "".join(w.word for w in words), words=words))
    turns = normalize_turns([Turn(0.0, 1.5, "a"), Turn(1.5, 4.0, "b")])
    assert [s.speaker for s in label_transcript(transcript, turns, split=False).segments] == [
        "Speaker 2"
    ]
    assert len(label_transcript(transcript, turns).segments) == 2

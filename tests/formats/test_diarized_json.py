"""OpenAI's diarized_json, checked against the official ``openai`` package's response type."""

from __future__ import annotations

import json

from openai.types.audio import TranscriptionDiarized

from voxhelm.formats import render
from voxhelm.transcript import Segment, Transcript


def diarized(*segments: tuple[float, float, str, str | None]) -> TranscriptionDiarized:
    transcript = Transcript.from_segments(
        [Segment(i, start, end, text) for i, (start, end, text, _) in enumerate(segments)],
        language="en",
        duration=12.5,
    ).with_speakers([speaker for *_, speaker in segments])
    rendered = render(transcript, "diarized_json")
    assert rendered.content_type == "application/json"
    assert list(json.loads(rendered.body)) == ["task", "duration", "text", "segments"]
    return TranscriptionDiarized.model_validate_json(rendered.body)


def test_it_parses_with_the_openai_type_and_letters_anonymous_speakers() -> None:
    parsed = diarized(
        (0.0, 1.5, " Hello there.", "Speaker 2"),
        (1.5, 3.339999999999996, " Hi!", "Speaker 1"),
        (3.4, 5.0, " How are you?", "Speaker 2"),
    )
    assert (parsed.task, parsed.duration) == ("transcribe", 12.5)
    assert parsed.text == "Hello there. Hi! How are you?"
    assert [(s.id, s.speaker, s.text) for s in parsed.segments] == [
        ("seg_0", "A", "Hello there."),  # whoever speaks first is A
        ("seg_1", "B", "Hi!"),
        ("seg_2", "A", "How are you?"),
    ]
    assert parsed.segments[1].end == 3.34
    assert {s.type for s in parsed.segments} == {"transcript.text.segment"}


def test_known_speakers_keep_their_names_and_the_others_get_letters() -> None:
    parsed = diarized(
        (0.0, 1.0, " One.", "Joe"),
        (1.0, 2.0, " Two.", "Speaker 3"),
        (2.0, 3.0, " Three.", "Ava"),
    )
    assert [s.speaker for s in parsed.segments] == ["Joe", "A", "Ava"]


def test_a_letter_a_known_speaker_is_called_by_is_not_given_to_another_voice() -> None:
    parsed = diarized(
        (0.0, 1.0, " One.", "A"),
        (1.0, 2.0, " Two.", "Speaker 1"),
        (2.0, 3.0, " Three.", "Speaker 2"),
        (3.0, 4.0, " Four.", "C"),
    )
    assert [s.speaker for s in parsed.segments] == ["A", "B", "D", "C"]


def test_a_segment_without_a_speaker_takes_its_neighbours_and_silence_is_left_out() -> None:
    parsed = diarized(
        (0.0, 1.0, " Before.", None),
        (1.0, 2.0, " One.", "Speaker 1"),
        (2.0, 2.5, "  ", None),
        (2.5, 3.0, " Breath.", None),
        (3.0, 4.0, " Two.", "Speaker 2"),
    )
    assert [(s.id, s.speaker, s.text) for s in parsed.segments] == [
        ("seg_0", "A", "Before."),
        ("seg_1", "A", "One."),
        ("seg_2", "A", "Breath."),
        ("seg_3", "B", "Two."),
    ]


def test_more_than_26_speakers_are_named_as_spreadsheet_columns() -> None:
    parsed = diarized(*((float(i), i + 1.0, f" Line {i}.", f"Speaker {i + 1}") for i in range(28)))
    assert [s.speaker for s in parsed.segments][24:] == ["Y", "Z", "AA", "AB"]

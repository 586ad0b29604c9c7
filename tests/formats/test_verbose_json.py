"""OpenAI's verbose_json, checked against the official ``openai`` package's response type."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from openai.types.audio import TranscriptionVerbose

from voxhelm.formats import render
from voxhelm.stt.languages import NAMES, whisper_languages
from voxhelm.transcript import Segment, Transcript, Word


@pytest.fixture
def whisper_like() -> Transcript:
    """A transcript as faster-whisper reports it: statistics, tokens and word timings."""
    return Transcript.from_segments(
        [
            Segment(
                0,
                0.0,
                1.5,
                " Hello there.",
                seek=0,
                avg_logprob=-0.25,
                compression_ratio=1.1,
                no_speech_prob=0.01,
                temperature=0.0,
                tokens=(50364, 2425, 456, 13),
                words=(Word(0.0, 0.6, " Hello", 0.9), Word(0.6, 1.5, " there.", 0.8)),
            ),
            Segment(
                1,
                1.5,
                3.25,
                " Hi!",
                seek=0,
                avg_logprob=-0.5,
                compression_ratio=0.9,
                no_speech_prob=0.02,
                temperature=0.2,
                tokens=(2421, 0),
                words=(Word(1.5, 3.25, " Hi!", 0.7),),
            ),
        ],
        language="en",
        duration=3.3,
    )


def verbose(transcript: Transcript, *, words: bool = False) -> bytes:
    rendered = render(transcript, "verbose_json", words=words)
    assert rendered.content_type == "application/json"
    return rendered.body


def test_it_parses_with_the_openai_type(whisper_like: Transcript) -> None:
    parsed = TranscriptionVerbose.model_validate_json(verbose(whisper_like))
    assert parsed.language == "english"  # OpenAI answers the name, not the code
    assert parsed.duration == 3.3
    assert parsed.text == "Hello there. Hi!"
    assert parsed.words is None
    assert parsed.segments is not None
    first, second = parsed.segments
    assert (first.id, first.seek, first.start, first.end) == (0, 0, 0.0, 1.5)
    assert first.tokens == [50364, 2425, 456, 13]
    assert (first.avg_logprob, first.compression_ratio, first.no_speech_prob) == (
        -0.25,
        1.1,
        0.01,
    )
    assert (second.text, second.temperature) == ("Hi!", 0.2)  # segments are kept trimmed


def test_it_adds_top_level_words_when_asked(whisper_like: Transcript) -> None:
    parsed = TranscriptionVerbose.model_validate_json(verbose(whisper_like, words=True))
    assert parsed.words is not None
    assert [(w.word, w.start, w.end) for w in parsed.words] == [
        ("Hello", 0.0, 0.6),
        ("there.", 0.6, 1.5),
        ("Hi!", 1.5, 3.25),
    ]
    assert "words" not in json.loads(verbose(whisper_like, words=True))["segments"][0]


def test_it_keeps_the_reference_keys_first_in_order(whisper_like: Transcript) -> None:
    payload = json.loads(verbose(whisper_like, words=True))
    assert list(payload) == ["task", "language", "duration", "text", "segments", "words"]
    assert list(payload["segments"][0]) == [
        "id",
        "seek",
        "start",
        "end",
        "text",
        "tokens",
        "temperature",
        "avg_logprob",
        "compression_ratio",
        "no_speech_prob",
    ]


def test_it_fills_missing_statistics_so_the_openai_type_accepts_them() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.29, 1.0, "Bare.")], language="en", duration=None
    )
    parsed = TranscriptionVerbose.model_validate_json(verbose(transcript, words=True))
    assert parsed.words == []
    assert parsed.segments is not None
    segment = parsed.segments[0]
    assert segment.seek == 28
    assert segment.tokens == []
    assert (segment.temperature, segment.avg_logprob) == (0.0, 0.0)
    assert (segment.compression_ratio, segment.no_speech_prob) == (0.0, 0.0)


def test_it_takes_the_duration_from_the_last_segment_when_unknown() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, "a"), Segment(1, 1.0, 2.75, "b")], language="en", duration=None
    )
    assert json.loads(verbose(transcript))["duration"] == 2.75


def test_it_renders_non_finite_statistics_as_zero() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, "a", avg_logprob=-math.inf, compression_ratio=math.nan)],
        language="en",
        duration=math.nan,
    )
    payload = json.loads(verbose(transcript))
    assert payload["duration"] == 0.0
    assert payload["segments"][0]["avg_logprob"] == 0.0
    assert payload["segments"][0]["compression_ratio"] == 0.0


def test_it_adds_speaker_and_flags_only_when_present(whisper_like: Transcript) -> None:
    labelled = whisper_like.with_speakers(["Speaker 1", None])
    first, second = labelled.segments
    flagged = Transcript(
        text=labelled.text,
        language="en",
        duration=3.3,
        segments=(first, dataclasses.replace(second, flags=("loop_repaired",))),
    )
    segments = json.loads(verbose(flagged))["segments"]
    assert segments[0]["speaker"] == "Speaker 1"
    assert "voxhelm_flags" not in segments[0]
    assert "speaker" not in segments[1]
    assert segments[1]["voxhelm_flags"] == ["loop_repaired"]
    TranscriptionVerbose.model_validate_json(verbose(flagged))


def test_it_renders_the_task_of_a_translation() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, "Hello")], language="de", duration=1.0, task="translate"
    )
    payload = json.loads(verbose(transcript))
    assert payload["task"] == "translate"
    # OpenAI's translation type: "the language of the output translation (always english)".
    assert payload["language"] == "english"


@pytest.mark.parametrize(
    ("code", "name"), [("de", "german"), ("yue", "cantonese"), ("ht", "haitian creole")]
)
def test_it_names_every_language_as_openai_does(code: str, name: str) -> None:
    transcript = Transcript.from_segments([Segment(0, 0.0, 1.0, "a")], language=code, duration=1)
    assert json.loads(verbose(transcript))["language"] == name


def test_every_language_whisper_knows_has_a_name() -> None:
    assert set(NAMES) == whisper_languages()
    assert NAMES["en"] == "english"


def test_a_language_it_cannot_name_is_kept_as_the_engine_said() -> None:
    transcript = Transcript.from_segments([Segment(0, 0.0, 1.0, "a")], language="xx", duration=1)
    assert json.loads(verbose(transcript))["language"] == "xx"


def test_it_is_compact_and_ascii_escaped() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, "Tschüss")], language="de", duration=1.0
    )
    body = verbose(transcript)
    assert b"\n" not in body
    assert b'"text": "Tsch\\u00fcss"' in body

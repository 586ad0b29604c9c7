"""Reading a ``transcript.json`` artifact back: every artifact renders again byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voxhelm.errors import InvalidJson
from voxhelm.formats import ARTIFACT_FORMATS, render_artifact
from voxhelm.formats.openai_json import read_transcript_json
from voxhelm.stt.loops import REPAIRED
from voxhelm.transcript import Segment, Transcript, Word


def machine_transcript() -> Transcript:
    return Transcript.from_segments(
        [
            Segment(
                0,
                0.0,
                2.0,
                " Welcome <back> & hello.",
                seek=0,
                speaker="Speaker 1",
                words=(Word(0.0, 1.0, " Welcome"),),
                avg_logprob=-0.2,
                tokens=(1, 2),
            ),
            Segment(1, 2.0, 2.0, "   "),
            Segment(
                2, 2.5, 4.75, " Thanks --> for\nhaving me.", speaker="Speaker 2", flags=(REPAIRED,)
            ),
            Segment(3, 5.0, 4.0, " Ünïcode ends early.", seek=480, speaker="Speaker 1"),
        ],
        language="de",
        duration=6.0,
    )


def test_every_artifact_renders_again_the_same_from_the_json_artifact() -> None:
    machine = machine_transcript()
    stored = json.loads(render_artifact(machine, "json"))
    read = read_transcript_json(stored, duration=6.0)
    for key in ARTIFACT_FORMATS:
        assert render_artifact(read, key) == render_artifact(machine, key), key


def test_a_document_with_untrimmed_texts_and_float_noise_is_read_clean() -> None:
    # transcript.json as a split at a speaker change wrote it before segments were kept
    # trimmed and in whole milliseconds: a correction writes every artifact again from it.
    stored = {
        "task": "transcribe",
        "language": "en",
        "text": "You know I heard",
        "segments": [
            {"id": 0, "seek": 0, "start": 6.379999999999998, "end": 7.34, "text": "You"},
            {"id": 1, "seek": 0, "start": 7.339999999999996, "end": 8.2, "text": " know I heard"},
        ],
    }
    read = read_transcript_json(stored, duration=9.0)
    assert [(s.start, s.end, s.text) for s in read.segments] == [
        (6.38, 7.34, "You"),
        (7.34, 8.2, "know I heard"),
    ]
    rendered = json.loads(render_artifact(read, "json"))
    assert [(s["start"], s["text"]) for s in rendered["segments"]] == [
        (6.38, "You"),
        (7.34, "know I heard"),
    ]
    assert b"99999" not in render_artifact(read, "json")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"segments": {}},
        {"segments": [{"id": 0}]},
        {"segments": [[1]]},
        {"segments": [{"id": 0, "start": "x", "end": 1, "text": ""}]},
        {"segments": [{"id": 0, "start": float("nan"), "end": 1, "text": ""}]},
    ],
)
def test_a_document_that_is_not_a_transcript_is_invalid_json(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidJson):
        read_transcript_json(payload, duration=None)

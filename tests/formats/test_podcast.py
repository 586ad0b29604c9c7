"""DOTe and Podlove: the reference's normalized segments."""

from __future__ import annotations

import json

from voxhelm.formats import render_artifact
from voxhelm.transcript import Segment, Transcript


def lines(transcript: Transcript) -> list[dict[str, str]]:
    payload: dict[str, list[dict[str, str]]] = json.loads(render_artifact(transcript, "dote"))
    return payload["lines"]


def podlove(transcript: Transcript) -> list[dict[str, object]]:
    payload: dict[str, list[dict[str, object]]] = json.loads(render_artifact(transcript, "podlove"))
    return payload["transcripts"]


def test_it_drops_blank_segments() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, " \n "), Segment(1, 1.0, 2.0, " kept ")], language="en", duration=2
    )
    assert [line["text"] for line in lines(transcript)] == ["kept"]
    assert [item["text"] for item in podlove(transcript)] == ["kept"]


def test_it_clamps_ends_to_their_starts() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 5.0, 4.0, "backwards")], language="en", duration=None
    )
    assert lines(transcript)[0]["endTime"] == "00:00:05,000"
    assert podlove(transcript)[0]["end_ms"] == 5000
    assert podlove(transcript)[0]["end"] == "00:00:05.000"


def test_it_clamps_negative_starts_to_zero() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, -0.5, 0.25, "early")], language="en", duration=None
    )
    assert podlove(transcript)[0]["start_ms"] == 0
    assert lines(transcript)[0]["startTime"] == "00:00:00,000"


def test_it_turns_text_without_segments_into_one_zero_length_line() -> None:
    transcript = Transcript(text="Just text.", language="en", duration=None, segments=())
    assert lines(transcript) == [
        {
            "startTime": "00:00:00,000",
            "endTime": "00:00:00,000",
            "speakerDesignation": "",
            "text": "Just text.",
        }
    ]
    assert podlove(transcript) == [
        {
            "start": "00:00:00.000",
            "start_ms": 0,
            "end": "00:00:00.000",
            "end_ms": 0,
            "speaker": "",
            "voice": "",
            "text": "Just text.",
        }
    ]


def test_it_labels_only_diarized_segments() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, "a"), Segment(1, 1.0, 2.0, "b")], language="en", duration=2.0
    ).with_speakers(["Speaker 2", None])
    assert [line["speakerDesignation"] for line in lines(transcript)] == ["Speaker 2", ""]
    assert [(item["speaker"], item["voice"]) for item in podlove(transcript)] == [
        ("Speaker 2", "Speaker 2"),
        ("", ""),
    ]

"""The format registry: names, content types, batch artifacts and format keys."""

from __future__ import annotations

import json

import pytest

from voxhelm.errors import InvalidInput
from voxhelm.formats import (
    ARTIFACT_FORMATS,
    FORMATS,
    RESPONSE_FORMATS,
    ArtifactFormat,
    UnsupportedFormat,
    normalize_format_key,
    render,
    render_artifact,
)
from voxhelm.transcript import Segment, Transcript

TRANSCRIPT = Transcript.from_segments([Segment(0, 0.0, 1.0, "Hello.")], language="en", duration=1.0)


def test_it_lists_the_reference_artifacts_plus_srt() -> None:
    assert dict(ARTIFACT_FORMATS) == {
        "text": ArtifactFormat("transcript.txt", "transcript_text", "text/plain; charset=utf-8"),
        "json": ArtifactFormat("transcript.json", "transcript_json", "application/json"),
        "vtt": ArtifactFormat("transcript.vtt", "transcript_vtt", "text/vtt; charset=utf-8"),
        "srt": ArtifactFormat(
            "transcript.srt", "transcript_srt", "application/x-subrip; charset=utf-8"
        ),
        "dote": ArtifactFormat("transcript.dote.json", "transcript_dote", "application/json"),
        "podlove": ArtifactFormat(
            "transcript.podlove.json", "transcript_podlove", "application/json"
        ),
    }


def test_it_unpacks_an_artifact_format_as_a_tuple() -> None:
    name, kind, content_type = ARTIFACT_FORMATS["vtt"]
    assert (name, kind, content_type) == (
        "transcript.vtt",
        "transcript_vtt",
        "text/vtt; charset=utf-8",
    )


def test_it_describes_every_format() -> None:
    assert {name: info.content_type for name, info in FORMATS.items()} == {
        "json": "application/json",
        "text": "text/plain; charset=utf-8",
        "verbose_json": "application/json",
        "diarized_json": "application/json",
        "transcript_json": "application/json",
        "vtt": "text/vtt; charset=utf-8",
        "srt": "application/x-subrip; charset=utf-8",
        "dote": "application/json",
        "podlove": "application/json",
    }
    assert FORMATS["transcript_json"].artifact_name == "transcript.json"
    assert FORMATS["transcript_json"].artifact_kind == "transcript_json"
    assert FORMATS["json"].artifact_name is None
    assert FORMATS["verbose_json"].batch_key is None


def test_it_offers_openais_response_formats_for_sync() -> None:
    assert set(RESPONSE_FORMATS) == {"json", "text", "srt", "verbose_json", "vtt", "diarized_json"}
    assert set(RESPONSE_FORMATS) <= set(FORMATS)


def test_it_returns_the_content_type_with_the_body() -> None:
    rendered = render(TRANSCRIPT, "srt")
    assert rendered.content_type == "application/x-subrip; charset=utf-8"
    assert rendered.body.startswith(b"1\n00:00:00,000 --> 00:00:01,000\n")


def test_it_renders_the_json_artifact_as_the_reference_verbose_structure() -> None:
    assert render_artifact(TRANSCRIPT, "json") == render(TRANSCRIPT, "transcript_json").body
    assert list(json.loads(render_artifact(TRANSCRIPT, "json"))) == [
        "task",
        "language",
        "text",
        "segments",
        "voxhelm_flags",
    ]


@pytest.mark.parametrize(
    ("raw", "key"),
    [("vtt", "vtt"), ("webvtt", "vtt"), (" WebVTT ", "vtt"), ("JSON", "json"), ("srt", "srt")],
)
def test_it_normalizes_format_keys(raw: str, key: str) -> None:
    assert normalize_format_key(raw) == key


def test_it_leaves_unknown_keys_for_the_caller_to_reject() -> None:
    assert normalize_format_key(" Docx ") == "docx"
    assert "docx" not in ARTIFACT_FORMATS


def test_it_renders_an_artifact_by_its_alias() -> None:
    assert render_artifact(TRANSCRIPT, "webvtt") == render(TRANSCRIPT, "vtt").body


def test_it_rejects_an_unknown_format() -> None:
    with pytest.raises(UnsupportedFormat) as excinfo:
        render(TRANSCRIPT, "docx")
    assert isinstance(excinfo.value, InvalidInput)
    assert excinfo.value.param == "response_format"


def test_it_rejects_a_sync_only_format_as_an_artifact() -> None:
    with pytest.raises(UnsupportedFormat) as excinfo:
        render_artifact(TRANSCRIPT, "verbose_json")
    assert excinfo.value.param == "output.formats"


def test_it_sums_up_quality_beside_the_reference_segments_in_the_artifact() -> None:
    transcript = Transcript.from_segments(
        [
            Segment(0, 0.0, 1.0, "a"),
            Segment(1, 1.0, 2.0, "b", flags=("repaired",)),
            Segment(2, 2.0, 3.5, "c", flags=("repaired",)),
            Segment(3, 5.0, 6.0, "", flags=("dropped",)),
            Segment(4, 7.0, 8.0, "d", flags=("suspect",)),
        ],
        language="en",
        duration=10.0,
    )
    payload = json.loads(render_artifact(transcript, "json"))
    assert list(payload) == ["task", "language", "text", "segments", "voxhelm_flags"]
    assert payload["voxhelm_flags"] == {
        "segments": [
            {"id": 1, "flags": ["repaired"]},
            {"id": 2, "flags": ["repaired"]},
            {"id": 3, "flags": ["dropped"]},
            {"id": 4, "flags": ["suspect"]},
        ],
        "repaired": [[1.0, 3.5]],
        "suspect": [[7.0, 8.0]],
        "dropped": [[5.0, 6.0]],
        "no_speech_ratio": 0.55,  # 4.5 of 10 seconds carry text
    }
    assert list(payload["segments"][1]) == ["id", "seek", "start", "end", "text"]


def test_an_untouched_transcript_has_an_empty_quality_summary() -> None:
    transcript = Transcript.from_segments([Segment(0, 0.0, 2.0, "a")], "en", 2.0)
    assert json.loads(render_artifact(transcript, "json"))["voxhelm_flags"] == {
        "segments": [],
        "repaired": [],
        "suspect": [],
        "dropped": [],
        "no_speech_ratio": 0.0,
    }

"""The worked example of the reference spec (reference-media §2), byte for byte in every format."""

from __future__ import annotations

import json

import pytest

from voxhelm.formats import FORMATS, render, render_artifact
from voxhelm.formats.encoding import dump_artifact_json
from voxhelm.transcript import Segment, Transcript


@pytest.fixture
def plain() -> Transcript:
    """The example without diarization."""
    return Transcript.from_segments(
        [Segment(0, 0.0, 1.5, "Hello there."), Segment(1, 1.5, 3.25, "Hi!")],
        language="en",
        duration=3.25,
    )


@pytest.fixture
def diarized(plain: Transcript) -> Transcript:
    return plain.with_speakers(["Speaker 1", "Speaker 2"])


EMPTY = Transcript.from_segments([], language=None, duration=None)

TRANSCRIPT_JSON_PLAIN = """{
  "task": "transcribe",
  "language": "en",
  "text": "Hello there. Hi!",
  "segments": [
    {
      "id": 0,
      "seek": 0,
      "start": 0.0,
      "end": 1.5,
      "text": "Hello there."
    },
    {
      "id": 1,
      "seek": 150,
      "start": 1.5,
      "end": 3.25,
      "text": "Hi!"
    }
  ]
}"""

TRANSCRIPT_JSON_DIARIZED = TRANSCRIPT_JSON_PLAIN.replace(
    '"text": "Hello there."', '"text": "Hello there.",\n      "speaker": "Speaker 1"'
).replace('"text": "Hi!"\n', '"text": "Hi!",\n      "speaker": "Speaker 2"\n')

DOTE = """{
  "lines": [
    {
      "startTime": "00:00:00,000",
      "endTime": "00:00:01,500",
      "speakerDesignation": "%s",
      "text": "Hello there."
    },
    {
      "startTime": "00:00:01,500",
      "endTime": "00:00:03,250",
      "speakerDesignation": "%s",
      "text": "Hi!"
    }
  ]
}"""

PODLOVE = """{
  "version": 1,
  "transcripts": [
    {
      "start": "00:00:00.000",
      "start_ms": 0,
      "end": "00:00:01.500",
      "end_ms": 1500,
      "speaker": "%s",
      "voice": "%s",
      "text": "Hello there."
    },
    {
      "start": "00:00:01.500",
      "start_ms": 1500,
      "end": "00:00:03.250",
      "end_ms": 3250,
      "speaker": "%s",
      "voice": "%s",
      "text": "Hi!"
    }
  ]
}"""

VTT = (
    b"WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n00:00:01.500 --> 00:00:03.250\nHi!\n"
)


def test_it_joins_segment_texts_with_one_space(plain: Transcript) -> None:
    assert plain.text == "Hello there. Hi!"


def test_it_renders_sync_json_with_default_separators(plain: Transcript) -> None:
    assert render(plain, "json").body == b'{"text": "Hello there. Hi!"}'


def test_it_renders_text_without_a_trailing_newline(plain: Transcript) -> None:
    assert render(plain, "text").body == b"Hello there. Hi!"
    assert render_artifact(plain, "text") == b"Hello there. Hi!"


def test_it_renders_the_reference_vtt_bytes(plain: Transcript) -> None:
    assert render(plain, "vtt").body == VTT
    assert render_artifact(plain, "vtt") == VTT


def reference_part(body: bytes) -> bytes:
    """The artifact without the quality summary Voxhelm appends as its last key."""
    payload = json.loads(body)
    assert list(payload)[-1] == "voxhelm_flags"
    del payload["voxhelm_flags"]
    return dump_artifact_json(payload)


def test_it_renders_the_reference_transcript_json_artifact(plain: Transcript) -> None:
    body = render_artifact(plain, "json")
    assert reference_part(body) == TRANSCRIPT_JSON_PLAIN.encode()
    assert body.startswith(TRANSCRIPT_JSON_PLAIN.encode()[:-2] + b',\n  "voxhelm_flags": {')


def test_it_adds_speaker_keys_to_the_artifact_only_on_diarized_segments(
    diarized: Transcript,
) -> None:
    assert reference_part(render_artifact(diarized, "json")) == TRANSCRIPT_JSON_DIARIZED.encode()


def test_it_renders_dote_with_empty_speakers_without_diarization(plain: Transcript) -> None:
    assert render_artifact(plain, "dote") == (DOTE % ("", "")).encode()


def test_it_renders_dote_speaker_designations(diarized: Transcript) -> None:
    assert render_artifact(diarized, "dote") == (DOTE % ("Speaker 1", "Speaker 2")).encode()


def test_it_renders_podlove_with_empty_speakers_without_diarization(plain: Transcript) -> None:
    assert render_artifact(plain, "podlove") == (PODLOVE % (("",) * 4)).encode()


def test_it_renders_podlove_speaker_and_voice(diarized: Transcript) -> None:
    expected = PODLOVE % ("Speaker 1", "Speaker 1", "Speaker 2", "Speaker 2")
    assert render_artifact(diarized, "podlove") == expected.encode()


def test_it_renders_srt(plain: Transcript) -> None:
    assert render_artifact(plain, "srt") == (
        b"1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n00:00:01,500 --> 00:00:03,250\nHi!\n"
    )


def test_it_prefixes_srt_cues_with_the_speaker(diarized: Transcript) -> None:
    assert render_artifact(diarized, "srt") == (
        b"1\n00:00:00,000 --> 00:00:01,500\nSpeaker 1: Hello there.\n\n"
        b"2\n00:00:01,500 --> 00:00:03,250\nSpeaker 2: Hi!\n"
    )


def test_it_writes_speakers_into_vtt_as_voice_tags(diarized: Transcript) -> None:
    assert render_artifact(diarized, "vtt") == (
        b"WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n<v Speaker 1>Hello there.\n\n"
        b"00:00:01.500 --> 00:00:03.250\n<v Speaker 2>Hi!\n"
    )


def test_it_keeps_speakers_out_of_text_and_json(diarized: Transcript) -> None:
    assert render(diarized, "text").body == b"Hello there. Hi!"
    assert render(diarized, "json").body == b'{"text": "Hello there. Hi!"}'


def test_it_escapes_non_ascii_in_every_json_body() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, "Grüße")], language="de", duration=1.0
    ).with_speakers(["Jürgen"])
    for fmt in ("json", "verbose_json", "transcript_json", "dote", "podlove"):
        body = render(transcript, fmt).body
        assert b"Gr\\u00fc\\u00dfe" in body, fmt
        assert body.isascii(), fmt
    assert b'"speakerDesignation": "J\\u00fcrgen"' in render_artifact(transcript, "dote")


def test_it_keeps_utf8_in_text_and_subtitles() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0, 1.0, "Grüße")], language="de", duration=1.0
    )
    for fmt in ("text", "vtt", "srt"):
        assert "Grüße".encode() in render(transcript, fmt).body, fmt


EMPTY_CASES = [
    ("json", b'{"text": ""}'),
    ("text", b""),
    (
        "verbose_json",
        b'{"task": "transcribe", "language": null, "duration": 0.0, "text": "", "segments": []}',
    ),
    (
        "transcript_json",
        b'{\n  "task": "transcribe",\n  "language": null,\n  "text": "",\n  "segments": [],\n'
        b'  "voxhelm_flags": {\n    "segments": [],\n    "repaired": [],\n    "suspect": [],\n'
        b'    "dropped": [],\n    "no_speech_ratio": 0.0\n  }\n}',
    ),
    ("vtt", b"WEBVTT\n"),
    ("srt", b""),
    ("dote", b'{\n  "lines": []\n}'),
    ("podlove", b'{\n  "version": 1,\n  "transcripts": []\n}'),
    ("diarized_json", b'{"task": "transcribe", "duration": 0.0, "text": "", "segments": []}'),
]


@pytest.mark.parametrize(("fmt", "expected"), EMPTY_CASES)
def test_it_renders_an_empty_transcript(fmt: str, expected: bytes) -> None:
    assert render(EMPTY, fmt).body == expected


def test_it_has_an_empty_case_for_every_format() -> None:
    assert {fmt for fmt, _ in EMPTY_CASES} == set(FORMATS)

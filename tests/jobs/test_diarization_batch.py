"""Diarized batch jobs end to end: the real server, real HTTP, the real STT and diarization
models, and a synthetic conversation of two distinct voices with known turns.

The session server runs with the default ``VOXHELM_DIARIZATION_BACKEND`` (the embedded
``onnx`` engine). Artifacts are parsed with the libraries clients use (``webvtt-py``,
``pysrt``, ``json``), and every labeled segment is checked against who really spoke then.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pysrt
import pytest
import webvtt

from tests.conftest import ServerProcess
from tests.diarization.conversation import (
    TWO_SPEAKERS,
    Conversation,
    Line,
    converse,
    has_espeak,
)
from tests.jobs.media_server import MediaServer, serve_media
from tests.jobs.test_batch import assert_clean_segments, poll, submit

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run"),
]

TRUTH_NAMES = {"piper": "Speaker 1", "ava": "Speaker 2"}  # Piper opens the conversation
ALL_FORMATS = ["text", "json", "dote", "podlove", "vtt", "srt"]
# Ava takes over Piper's sentence without a pause, after 6.7 s of silence: Whisper keeps
# the handover in one segment, which diarization (either mode) must cut at the word.
HANDOVER = [
    *TWO_SPEAKERS[:4],
    Line("piper", "The weather station on the roof", pause=0.0),
    Line("ava", "reported a cold front moving in from the west tonight."),
]
SPEECH_STARTS = 6.7


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        yield server


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    return converse(TWO_SPEAKERS)


@pytest.fixture(scope="module")
def handover() -> Conversation:
    return converse(HANDOVER, lead_seconds=SPEECH_STARTS)


def run_job(server: ServerProcess, url: str, timeout: float = 300, **fields: Any) -> dict[str, Any]:
    with server.client() as client:
        response = submit(client, url, **fields)
        assert response.status_code == 201, response.text
        return poll(client, response.json()["id"], {"succeeded"}, timeout=timeout)[-1]


def artifact(server: ServerProcess, job: dict[str, Any], key: str) -> bytes:
    with server.client() as client:
        response = client.get(job["result"]["artifacts"][key])
        assert response.status_code == 200, response.text
        return response.content


def test_a_diarized_job_labels_every_format_with_the_right_speaker(
    server: ServerProcess, media: MediaServer, conversation: Conversation
) -> None:
    url = media.add("/talk.wav", "audio/wav", conversation.wav_bytes())
    job = run_job(
        server,
        url,
        output={"formats": ["text", "json", "dote", "podlove", "vtt", "srt"]},
        diarization={"enabled": True},
    )
    assert job["result"]["metadata"]["diarization"] == {"enabled": True}

    segments = json.loads(artifact(server, job, "json"))["segments"]
    assert len(segments) >= len(conversation.lines)
    expected = []
    for segment in segments:
        truth = conversation.speaker_at(segment["start"], segment["end"])
        expected.append(TRUTH_NAMES[truth])
        assert segment.get("speaker") == TRUTH_NAMES[truth], segment
    assert set(expected) == {"Speaker 1", "Speaker 2"}

    lines = json.loads(artifact(server, job, "dote"))["lines"]
    assert [line["speakerDesignation"] for line in lines] == expected
    entries = json.loads(artifact(server, job, "podlove"))["transcripts"]
    assert [(e["speaker"], e["voice"]) for e in entries] == [(s, s) for s in expected]

    captions = webvtt.from_buffer(io.StringIO(artifact(server, job, "vtt").decode()))
    assert [caption.voice for caption in captions] == expected
    assert all(
        f"<v {s}>" in caption.raw_text for caption, s in zip(captions, expected, strict=True)
    )
    subtitles = pysrt.from_string(artifact(server, job, "srt").decode())
    assert [item.text.split(":", 1)[0] for item in subtitles] == expected

    text = artifact(server, job, "text").decode()
    assert "Speaker" not in text  # plain text stays plain


def test_a_speaker_change_without_a_pause_is_found_at_the_word(
    server: ServerProcess, media: MediaServer
) -> None:
    # The second voice finishes the first one's sentence with no pause at all. Whether
    # Whisper keeps that in one segment or not, the words before the change must be
    # Speaker 1's and the rest Speaker 2's (a segment spanning it is cut at the word).
    lines = [
        *TWO_SPEAKERS[:4],
        Line("piper", "The weather station on the roof reported", pause=0.0),
        Line("ava", "a cold front moving in from the west tonight and tomorrow morning."),
    ]
    conversation = converse(lines)
    url = media.add("/close.wav", "audio/wav", conversation.wav_bytes())
    job = run_job(server, url, output={"formats": ["json"]}, diarization={"enabled": True})
    segments = json.loads(artifact(server, job, "json"))["segments"]
    assert [s["id"] for s in segments] == list(range(len(segments)))
    change = conversation.turns[-1].start
    before = [s for s in segments if s["end"] <= change + 0.3 and s["start"] >= change - 3]
    after = [s for s in segments if s["start"] >= change - 0.3]
    assert "roof" in " ".join(s["text"] for s in before)
    assert {s["speaker"] for s in before} == {"Speaker 1"}
    assert "front" in " ".join(s["text"] for s in after)
    assert {s["speaker"] for s in after} == {"Speaker 2"}


def test_a_known_speaker_job_names_the_references_in_the_sidecar_only(
    server: ServerProcess, media: MediaServer, conversation: Conversation
) -> None:
    joe = converse(
        [
            Line("piper", "Fresh bread from the bakery on the corner sells out before nine."),
            Line("piper", "His grandmother told stories about the winter the river froze."),
        ]
    )
    ava = converse(
        [Line("ava", "The museum opened a new exhibition about ancient maps and explorers.")]
    )
    talk = media.add("/known.wav", "audio/wav", conversation.wav_bytes())
    joe_url = media.add("/refs/joe.wav", "audio/wav", joe.wav_bytes())
    ava_url = media.add("/refs/ava-long.wav", "audio/wav", ava.wav_bytes())
    known_speakers = [
        {
            "id": "joe",
            "name": "Joe",
            "references": [{"kind": "clip_artifact", "audio": {"kind": "url", "url": joe_url}}],
        },
        {
            "id": "ava",
            "name": "Ava",
            "references": [
                {
                    "kind": "source_range",
                    "audio": {"kind": "url", "url": ava_url},
                    "start": 0.0,
                    "end": ava.duration,
                }
            ],
        },
    ]
    job = run_job(
        server,
        talk,
        output={"formats": ["json", "podlove"]},
        diarization={
            "enabled": True,
            "strategy": "pyannote_known_speaker",
            "known_speakers": known_speakers,
        },
    )
    assert set(job["result"]["artifacts"]) == {"json", "podlove", "speakers"}
    metadata = job["result"]["metadata"]["diarization"]
    assert metadata["strategy"] == "pyannote_known_speaker"
    assert metadata["known_speakers"] == [
        {"id": "joe", "name": "Joe", "reference_count": 1},
        {"id": "ava", "name": "Ava", "reference_count": 1},
    ]
    summary = metadata["known_speaker_summary"]
    assert summary["known_speakers"] == ["Ava", "Joe"]
    assert summary["raw_diarization_available"] is True
    assert "refs" not in json.dumps(job) and "127.0.0.1" not in json.dumps(metadata)

    sidecar_bytes = artifact(server, job, "speakers")
    assert b"refs" not in sidecar_bytes and b"http" not in sidecar_bytes
    sidecar = json.loads(sidecar_bytes)
    assert sidecar["version"] == 1
    assert sidecar["summary"] == summary
    names = {"piper": "Joe", "ava": "Ava"}
    for entry in sidecar["segments"]:
        truth = conversation.speaker_at(entry["start"], entry["end"])
        assert entry["speaker"] == names[truth], entry
        assert entry["speaker_uncertain"] is False
        assert entry["speaker_source"] == "known_speaker_voiceprint"
        assert entry["speaker_candidates"][0] == {
            "speaker": names[truth],
            "similarity": entry["speaker_confidence"],
        }
        assert entry["raw_diarization_speaker"] == TRUTH_NAMES[truth]
    assert summary["confident_segment_count"] == len(sidecar["segments"])
    assert set(summary["confident_speaker_distribution"]) == {"Joe", "Ava"}

    # Public artifacts stay unlabeled in known-speaker mode.
    assert all("speaker" not in s for s in json.loads(artifact(server, job, "json"))["segments"])
    podlove = json.loads(artifact(server, job, "podlove"))["transcripts"]
    assert {entry["speaker"] for entry in podlove} == {""}


def test_known_speaker_references_may_be_staged_uploads(
    server: ServerProcess, media: MediaServer, conversation: Conversation
) -> None:
    joe = converse([Line("piper", "Fresh bread from the bakery on the corner sells out early.")])
    ava = converse([Line("ava", "The museum opened a new exhibition about ancient maps.")])
    talk = media.add("/known-uploads.wav", "audio/wav", conversation.wav_bytes())
    with server.client() as client:
        ids = {}
        for name, voice in (("joe", joe), ("ava", ava)):
            staged = client.post(
                "/v1/uploads", files={"file": (f"{name}.wav", voice.wav_bytes(), "audio/wav")}
            )
            assert staged.status_code == 201, staged.text
            ids[name] = staged.json()["id"]
    known_speakers = [
        {
            "id": name,
            "name": name.title(),
            "references": [
                {"kind": "clip_artifact", "audio": {"kind": "upload", "upload_id": ids[name]}}
            ],
        }
        for name in ("joe", "ava")
    ]
    job = run_job(
        server,
        talk,
        output={"formats": ["json"]},
        diarization={
            "enabled": True,
            "strategy": "pyannote_known_speaker",
            "known_speakers": known_speakers,
        },
    )
    shown = json.dumps(job)
    assert "staged-inputs" not in shown and "storage" not in shown and "sha256" not in shown
    sidecar_bytes = artifact(server, job, "speakers")
    assert b"staged-inputs" not in sidecar_bytes
    names = {"piper": "Joe", "ava": "Ava"}
    segments = json.loads(sidecar_bytes)["segments"]
    assert segments
    for entry in segments:
        assert entry["speaker"] == names[conversation.speaker_at(entry["start"], entry["end"])]


def test_a_failing_reference_fails_the_job_without_naming_its_url(
    server: ServerProcess, media: MediaServer, conversation: Conversation
) -> None:
    talk = media.add("/known-2.wav", "audio/wav", conversation.wav_bytes())
    missing = media.url("/refs/secret-missing.wav")
    known_speakers = [
        {
            "id": "x",
            "name": "X",
            "references": [{"kind": "clip_artifact", "audio": {"kind": "url", "url": missing}}],
        }
    ]
    with server.client() as client:
        response = submit(
            client,
            talk,
            diarization={
                "enabled": True,
                "strategy": "pyannote_known_speaker",
                "known_speakers": known_speakers,
            },
        )
        assert response.status_code == 201, response.text
        job = poll(client, response.json()["id"], {"failed"}, timeout=300)[-1]
    assert job["error"]["code"] == "reference_audio_failed"
    assert "HTTP 404" in job["error"]["message"]
    assert "secret" not in json.dumps(job)


def clock_milliseconds(clock: str) -> int:
    hours, minutes, seconds = clock.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def cut_at_the_handover(
    segments: list[dict[str, Any]], conversation: Conversation
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The segments heard a second before the handover (Piper's part) and a second and a half
    after it (Ava's): two, not one. Found by time, not by words: Piper renders its lines a
    little differently each session, and Whisper's words around them vary with it."""
    change = conversation.turns[-1].start

    def heard_at(moment: float) -> dict[str, Any]:
        return min(segments, key=lambda s: max(s["start"] - moment, moment - s["end"], 0.0))

    before, after = heard_at(change - 1.0), heard_at(change + 1.5)
    assert before is not after, before
    return before, after


def assert_clean_everywhere(server: ServerProcess, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every segment of transcript.json trimmed and in whole milliseconds, and the other
    formats showing the same texts and times; the segments are returned."""
    segments = json.loads(artifact(server, job, "json"))["segments"]
    assert_clean_segments(segments)
    milliseconds = [(round(s["start"] * 1000), round(s["end"] * 1000)) for s in segments]
    texts = [s["text"] for s in segments]
    entries = json.loads(artifact(server, job, "podlove"))["transcripts"]
    assert [(e["start_ms"], e["end_ms"]) for e in entries] == milliseconds
    assert [e["text"] for e in entries] == texts
    lines = json.loads(artifact(server, job, "dote"))["lines"]
    assert [line["text"] for line in lines] == texts
    captions = webvtt.from_buffer(io.StringIO(artifact(server, job, "vtt").decode()))
    assert [clock_milliseconds(c.start) for c in captions] == [m[0] for m in milliseconds]
    subtitles = pysrt.from_string(artifact(server, job, "srt").decode())
    assert [item.start.ordinal for item in subtitles] == [m[0] for m in milliseconds]
    assert artifact(server, job, "text").decode() == " ".join(texts)
    return segments


def test_a_segment_cut_at_a_speaker_change_is_clean_in_every_artifact(
    server: ServerProcess, media: MediaServer, handover: Conversation
) -> None:
    url = media.add("/handover.wav", "audio/wav", handover.wav_bytes())
    job = run_job(server, url, output={"formats": ALL_FORMATS}, diarization={"enabled": True})
    segments = assert_clean_everywhere(server, job)
    before, after = cut_at_the_handover(segments, handover)
    assert (before["speaker"], after["speaker"]) == ("Speaker 1", "Speaker 2")
    assert segments[0]["start"] > SPEECH_STARTS - 0.5  # the first word, not the window's 0.0


def test_known_speakers_cut_segments_as_anonymous_labels_do(
    server: ServerProcess, media: MediaServer, handover: Conversation
) -> None:
    joe = converse(
        [Line("piper", "Fresh bread from the bakery on the corner sells out before nine.")]
    )
    ava = converse(
        [Line("ava", "The museum opened a new exhibition about ancient maps and explorers.")]
    )
    talk = media.add("/handover-known.wav", "audio/wav", handover.wav_bytes())
    known_speakers = [
        {
            "id": name.lower(),
            "name": name,
            "references": [
                {
                    "kind": "clip_artifact",
                    "audio": {
                        "kind": "url",
                        "url": media.add(f"/refs/{name}.wav", "audio/wav", clip),
                    },
                }
            ],
        }
        for name, clip in (("Joe", joe.wav_bytes()), ("Ava", ava.wav_bytes()))
    ]
    known = run_job(
        server,
        talk,
        output={"formats": ALL_FORMATS},
        diarization={
            "enabled": True,
            "strategy": "pyannote_known_speaker",
            "known_speakers": known_speakers,
            "known_speaker": {"label_transcript": True},
        },
    )
    segments = assert_clean_everywhere(server, known)
    before, after = cut_at_the_handover(segments, handover)
    assert (before["speaker"], after["speaker"]) == ("Joe", "Ava")
    assert segments[0]["start"] > SPEECH_STARTS - 0.5  # the first word, not the window's 0.0

    # The sidecar describes these very segments: index for id, the same times.
    sidecar = json.loads(artifact(server, known, "speakers"))
    assert [(e["index"], e["start"], e["end"]) for e in sidecar["segments"]] == [
        (s["id"], s["start"], s["end"]) for s in segments
    ]
    assert [e["speaker"] for e in sidecar["segments"]] == [s["speaker"] for s in segments]

    # And the cut is the anonymous path's own: the same segments, only other names.
    anonymous = run_job(server, talk, output={"formats": ["json"]}, diarization={"enabled": True})
    plain = json.loads(artifact(server, anonymous, "json"))["segments"]
    assert [(s["start"], s["end"], s["text"]) for s in plain] == [
        (s["start"], s["end"], s["text"]) for s in segments
    ]
    names = {"Speaker 1": "Joe", "Speaker 2": "Ava"}
    assert [names[s["speaker"]] for s in plain] == [s["speaker"] for s in segments]

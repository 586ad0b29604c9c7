"""Speaker names and corrections end to end: the real server over HTTP on loopback, the
real STT and diarization models, a conversation of two synthetic voices (the bundled Piper
voice and an espeak-ng voice), and the downloads parsed as clients parse them.

One diarized job serves the module's tests in order (transcribing it is the slow part):
rename, correct, refuse bad bodies, then save a voice and let a later episode find it.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pysrt
import pytest
import webvtt

from tests.conftest import OTHER_PRODUCER_TOKEN, ServerProcess
from tests.diarization.conversation import (
    TWO_SPEAKERS,
    Conversation,
    Line,
    converse,
    has_espeak,
)
from tests.jobs.media_server import MediaServer, serve_media
from tests.jobs.test_diarization_batch import artifact, run_job

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run"),
]

FORMATS = ["text", "json", "vtt", "srt", "dote", "podlove"]
NAMES = {"piper": "Anna Berg", "ava": "Ben Ødegaard"}  # a non-ASCII name on purpose

NEXT_EPISODE = [
    Line("ava", "Good morning, this week the garden is full of ripe tomatoes."),
    Line("piper", "I picked three kilos of them yesterday after lunch."),
    Line("ava", "Then we should talk about sauces and how to keep them for winter."),
    Line("piper", "My grandmother always cooked them slowly with garlic and olive oil."),
]


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        yield server


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    return converse(TWO_SPEAKERS)


@pytest.fixture(scope="module")
def job(server: ServerProcess, media: MediaServer, conversation: Conversation) -> dict[str, Any]:
    url = media.add("/episode-1.wav", "audio/wav", conversation.wav_bytes())
    return run_job(
        server,
        url,
        output={"formats": FORMATS},
        diarization={"enabled": True, "num_speakers": 2},
    )


def downloads(server: ServerProcess, job: dict[str, Any]) -> dict[str, bytes]:
    return {key: artifact(server, job, key) for key in FORMATS}


def transcript(server: ServerProcess, job: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/v1/jobs/{job['id']}/transcript{suffix}")
    assert response.status_code == 200, response.text
    return response.json()


def patch(server: ServerProcess, job: dict[str, Any], body: Any, **kwargs: Any) -> Any:
    with server.client() as client:
        if "content" in kwargs:
            return client.patch(f"/v1/jobs/{job['id']}/transcript", **kwargs)
        return client.patch(f"/v1/jobs/{job['id']}/transcript", json=body)


def who_spoke(conversation: Conversation, segments: list[dict[str, Any]]) -> dict[str, str]:
    """The machine's label of each true voice (by the majority of its segments)."""
    votes: dict[str, dict[str, int]] = {}
    for segment in segments:
        truth = conversation.speaker_at(segment["start"], segment["end"])
        label = segment["speaker"]
        votes.setdefault(truth, {}).setdefault(label, 0)
        votes[truth][label] += 1
    return {truth: max(counts, key=lambda k: counts[k]) for truth, counts in votes.items()}


def test_it_renames_speakers_in_every_download_and_keeps_the_original(
    server: ServerProcess, job: dict[str, Any], conversation: Conversation
) -> None:
    machine = transcript(server, job)
    assert machine["revision"] == 0 and machine["original"] is True
    assert machine["speakers"] == ["Speaker 1", "Speaker 2"]
    labels = who_spoke(conversation, machine["segments"])
    before = downloads(server, job)

    response = patch(
        server, job, {"speakers": {labels["piper"]: NAMES["piper"], labels["ava"]: NAMES["ava"]}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["revision"] == 1 and body["original"] is False
    assert body["speakers"] == [NAMES["piper"], NAMES["ava"]]  # Piper opens the conversation

    after = downloads(server, job)
    expected = [
        NAMES[conversation.speaker_at(s["start"], s["end"])]
        for s in json.loads(after["json"])["segments"]
    ]
    assert [s["speaker"] for s in json.loads(after["json"])["segments"]] == expected
    podlove = json.loads(after["podlove"])["transcripts"]
    assert [(e["speaker"], e["voice"]) for e in podlove] == [(n, n) for n in expected]
    assert [line["speakerDesignation"] for line in json.loads(after["dote"])["lines"]] == expected
    captions = webvtt.from_buffer(io.StringIO(after["vtt"].decode("utf-8")))
    assert [caption.voice for caption in captions] == expected
    subtitles = pysrt.from_string(after["srt"].decode("utf-8"))
    assert [item.text.split(": ", 1)[0] for item in subtitles] == expected
    assert after["text"] == before["text"]  # plain text has no speakers
    # Only the names changed: the same cues at the same times.
    assert [e["start_ms"] for e in podlove] == [
        e["start_ms"] for e in json.loads(before["podlove"])["transcripts"]
    ]

    original = transcript(server, job, "/original")
    assert original["original"] is True
    assert original["segments"] == machine["segments"]
    with server.client() as client:
        shown = client.get(f"/v1/jobs/{job['id']}").json()["result"]["artifacts"]
        assert set(shown) == set(FORMATS)  # the original is kept, not listed
        hidden = client.get(f"/v1/jobs/{job['id']}/artifacts/transcript.original.json")
        assert hidden.status_code == 404


def test_a_corrected_segment_is_rendered_again_in_every_format(
    server: ServerProcess, job: dict[str, Any]
) -> None:
    current = transcript(server, job)
    target = current["segments"][1]
    fixed = "At least six hours of sunlight, & water <early> in the morning."
    response = patch(
        server, job, {"segments": [{"id": target["id"], "text": fixed, "speaker": "Cleo"}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["revision"] == current["revision"] + 1

    after = downloads(server, job)
    segments = json.loads(after["json"])["segments"]
    changed = next(s for s in segments if s["id"] == target["id"])
    assert changed["text"].strip() == fixed and changed["speaker"] == "Cleo"
    assert (changed["start"], changed["end"]) == (target["start"], target["end"])
    assert fixed in after["text"].decode("utf-8")
    assert fixed in json.loads(after["json"])["text"]
    index = [s["id"] for s in segments if s["text"].strip()].index(target["id"])
    assert json.loads(after["podlove"])["transcripts"][index]["text"] == fixed
    assert json.loads(after["dote"])["lines"][index]["text"] == fixed
    caption = webvtt.from_buffer(io.StringIO(after["vtt"].decode("utf-8")))[index]
    escaped = fixed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert (caption.voice, caption.text) == ("Cleo", escaped)  # webvtt-py leaves entities
    assert pysrt.from_string(after["srt"].decode("utf-8"))[index].text == f"Cleo: {fixed}"
    with server.client() as client:
        result = client.get(f"/v1/jobs/{job['id']}").json()["result"]
        found = client.get("/v1/search", params={"q": "sunlight morning"}).json()["data"]
    assert fixed in result["text"]
    # Search finds the corrected words (the index follows a correction).
    assert any(hit["job_id"] == job["id"] and "sunlight" in hit["text"] for hit in found)
    # The original stays the machine's.
    original = transcript(server, job, "/original")
    assert fixed not in original["text"]
    assert "Cleo" not in {s["speaker"] for s in original["segments"]}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"speakerz": {"Speaker 1": "A"}}, "speakerz", None),
        ({"speakers": {"Nobody": "A"}}, "speakers.Nobody", "unknown_speaker"),
        ({"speakers": {"Anna Berg": ""}}, "speakers", None),
        ({"speakers": {"Anna Berg": "x" * 101}}, "speakers", None),
        ({"speakers": {"Anna Berg": 7}}, "speakers.Anna Berg", None),
        ({"segments": [{"id": 9999, "text": "x"}]}, "segments.id", "unknown_segment"),
        ({"segments": [{"id": 0, "text": "a"}, {"id": 0, "text": "b"}]}, "segments.id", None),
        ({"segments": [{"id": "0", "text": "a"}]}, "segments.0.id", None),
        ({"segments": [{"id": 0}]}, "segments", None),
        ({"segments": [{"id": 0, "txt": "a"}]}, "segments.0.txt", None),
        ({}, None, None),
        ([], None, None),
    ],
)
def test_bad_corrections_are_refused_and_change_nothing(
    server: ServerProcess, job: dict[str, Any], body: Any, param: str | None, code: str | None
) -> None:
    before = downloads(server, job)
    revision = transcript(server, job)["revision"]
    response = patch(server, job, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    assert downloads(server, job) == before
    assert transcript(server, job)["revision"] == revision


def test_it_refuses_what_is_not_json_and_other_producers(
    server: ServerProcess, job: dict[str, Any]
) -> None:
    form = patch(server, job, None, content=b"speakers=x", headers={"Content-Type": "text/plain"})
    assert form.status_code == 400
    assert form.json()["error"]["code"] == "unsupported_content_type"
    broken = patch(
        server, job, None, content=b'{"speakers": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    with server.client(token=OTHER_PRODUCER_TOKEN) as other:
        stranger = other.patch(f"/v1/jobs/{job['id']}/transcript", json={"speakers": {}})
        assert stranger.status_code == 404
        assert other.get(f"/v1/jobs/{job['id']}/transcript").status_code == 404
    with server.client(token=None) as anonymous:
        assert anonymous.patch(f"/v1/jobs/{job['id']}/transcript", json={}).status_code == 401


def test_a_job_that_did_not_succeed_is_a_409(server: ServerProcess, media: MediaServer) -> None:
    with server.client() as client:
        missing = media.url("/no-such-episode.wav")
        submitted = client.post(
            "/v1/jobs",
            json={"job_type": "transcribe", "input": {"kind": "url", "url": missing}},
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["id"]
        for _ in range(200):
            if client.get(f"/v1/jobs/{job_id}").json()["state"] == "failed":
                break
            time.sleep(0.1)
        response = client.patch(
            f"/v1/jobs/{job_id}/transcript", json={"speakers": {"Speaker 1": "A"}}
        )
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "transcript_not_editable"
        assert client.get(f"/v1/jobs/{job_id}/transcript").status_code == 409


def test_a_library_voice_names_its_speaker_in_the_next_episode(
    server: ServerProcess, media: MediaServer, job: dict[str, Any]
) -> None:
    with server.client() as client:
        saved = {}
        for voice in ("piper", "ava"):
            response = client.post(
                "/v1/speakers", json={"job_id": job["id"], "speaker": NAMES[voice]}
            )
            assert response.status_code == 201, response.text
            saved[voice] = response.json()
            assert saved[voice]["name"] == NAMES[voice]
            assert saved[voice]["speech_seconds"] >= 2.0
        listed = client.get("/v1/speakers").json()["data"]
        assert sorted(item["name"] for item in listed) == sorted(NAMES.values())
        with server.client(token=OTHER_PRODUCER_TOKEN) as other:
            assert other.get("/v1/speakers").json()["data"] == []
        refused = client.post("/v1/speakers", json={"job_id": job["id"], "speaker": "Nobody"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "unknown_speaker"
        extra = client.post(
            "/v1/speakers", json={"job_id": job["id"], "speaker": "Cleo", "voice": 1}
        )
        assert extra.status_code == 400 and extra.json()["error"]["param"] == "voice"

    episode = converse(NEXT_EPISODE)
    url = media.add("/episode-2.wav", "audio/wav", episode.wav_bytes())
    later = run_job(
        server,
        url,
        output={"formats": ["json", "podlove"]},
        diarization={
            "enabled": True,
            "strategy": "pyannote_known_speaker",
            "known_speakers": [{"library": NAMES["piper"]}, {"library": NAMES["ava"]}],
        },
    )
    segments = json.loads(artifact(server, later, "json"))["segments"]
    assert segments
    for segment in segments:
        truth = episode.speaker_at(segment["start"], segment["end"])
        assert segment["speaker"] == NAMES[truth], segment
    podlove = json.loads(artifact(server, later, "podlove"))["transcripts"]
    assert {entry["speaker"] for entry in podlove} == set(NAMES.values())
    shown = later["result"]["metadata"]["diarization"]["known_speakers"]
    assert {entry["library"] for entry in shown} == set(NAMES.values())
    assert all("voiceprint" not in entry for entry in shown)

    with server.client() as client:
        gone = client.delete(f"/v1/speakers/{saved['ava']['id']}")
        assert gone.status_code == 200 and gone.json()["deleted"] is True
        assert client.delete(f"/v1/speakers/{saved['ava']['id']}").status_code == 404
        names = [item["name"] for item in client.get("/v1/speakers").json()["data"]]
        assert names == [NAMES["piper"]]
        unknown = client.post(
            "/v1/jobs",
            json={
                "job_type": "transcribe",
                "input": {"kind": "url", "url": url},
                "diarization": {
                    "enabled": True,
                    "strategy": "pyannote_known_speaker",
                    "known_speakers": [{"library": NAMES["ava"]}],
                },
            },
        )
        assert unknown.status_code == 400, unknown.text
        assert unknown.json()["error"]["code"] == "unknown_library_speaker"

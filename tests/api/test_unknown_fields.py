"""A field no endpoint of the audio API knows is a 400 naming it, in every form: never ignored.

In process (Django's test client): each request is refused while its body is validated,
before any fetch, decode or model runs, so no server process is needed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.usefixtures("configure")

URL = "https://media.example.com/talk.mp3"


def refused(response: Any, field: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["message"]) == (field, f"Unknown field '{field}'.")


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_the_json_form_refuses_an_unknown_field(
    client: Any, auth_headers: dict[str, str], path: str
) -> None:
    body = {"url": URL, "model": "whisper-1", "diarize": True}
    response = client.post(
        path, json.dumps(body), content_type="application/json", headers=auth_headers
    )
    refused(response, "diarize")


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_the_multipart_form_refuses_an_unknown_field(
    client: Any, auth_headers: dict[str, str], path: str
) -> None:
    upload = SimpleUploadedFile("clip.wav", b"RIFF", "audio/wav")
    response = client.post(
        path, {"file": upload, "model": "whisper-1", "num_speakers": "2"}, headers=auth_headers
    )
    refused(response, "num_speakers")


def test_speech_refuses_an_unknown_field(client: Any, auth_headers: dict[str, str]) -> None:
    body = {"model": "tts-1", "input": "Hello.", "volume": 0.5}
    response = client.post(
        "/v1/audio/speech", json.dumps(body), content_type="application/json", headers=auth_headers
    )
    refused(response, "volume")


def test_the_fields_openai_defines_are_known(client: Any, auth_headers: dict[str, str]) -> None:
    # Every field of OpenAI's transcription request that Voxhelm serves reaches its own
    # check: here the URL's host, which the test configuration does not allow.
    body = {
        "url": URL,
        "model": "gpt-4o-transcribe-diarize",
        "language": "en",
        "response_format": "diarized_json",
        "temperature": 0,
        "stream": False,
        "chunking_strategy": "auto",
        "timestamp_granularities": ["segment"],
        "known_speaker_names": [],
        "known_speaker_references": [],
        "hotwords": ["Voxhelm"],
    }
    response = client.post(
        "/v1/audio/transcriptions",
        json.dumps(body),
        content_type="application/json",
        headers=auth_headers,
    )
    assert response.status_code == 400
    assert "allowlist" in response.json()["error"]["message"], response.json()

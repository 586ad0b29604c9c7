"""POST /v1/audio/speech and GET /v1/audio/voices over real HTTP with the official openai client.

The server is the session's real ``voxhelm serve``; what it says is checked by ear with the
real faster-whisper model.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.speech import EPISODE, HEARD_SYNTHESIS, SENTENCES, word_error_rate
from tests.test_encode import channels
from tests.tts.conftest import listen
from voxhelm.audio import Audio, decode, from_pcm16

pytestmark = pytest.mark.slow

TEXT = " ".join(SENTENCES)
FORMATS = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
}
# Piper draws phoneme lengths at random (noise_w), so two syntheses of one text differ by a
# few percent; a missing sentence would be a third of this text.
DURATION_TOLERANCE = 0.10


@pytest.fixture(scope="module")
def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> httpx.Client:
    return server.client()


def decoded(data: bytes, fmt: str) -> Audio:
    return from_pcm16(data, 24000, 1) if fmt == "pcm" else decode(data)


@pytest.fixture(scope="module")
def wav_duration(oai: openai.OpenAI) -> float:
    response = oai.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    return decode(response.content).duration


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_the_openai_client_gets_intelligible_speech(oai: openai.OpenAI) -> None:
    response = oai.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    assert response.response.headers["content-type"] == "audio/wav"
    assert response.response.headers["x-voxhelm-voice"] == "en_US-joe-medium"
    assert word_error_rate(TEXT, listen(decode(response.content))) <= HEARD_SYNTHESIS


def test_the_streaming_response_speaks_too(oai: openai.OpenAI) -> None:
    with oai.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="nova", input=TEXT, response_format="mp3"
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        data = b"".join(response.iter_bytes())
    assert word_error_rate(TEXT, listen(decode(data))) <= HEARD_SYNTHESIS


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_the_whole_speech(
    oai: openai.OpenAI, wav_duration: float, fmt: str
) -> None:
    response = oai.audio.speech.create(
        model="tts-1-hd",
        voice="echo",
        input=TEXT,
        response_format=fmt,  # type: ignore[arg-type]
    )
    headers = response.response.headers
    assert headers["content-type"] == FORMATS[fmt]
    assert headers["content-disposition"] == f'inline; filename="speech.{fmt}"'
    if fmt != "pcm":  # raw samples have no header to read channels from
        assert channels(response.content) == 1
    audio = decoded(response.content, fmt)
    assert audio.duration == pytest.approx(wav_duration, rel=DURATION_TOLERANCE)
    assert word_error_rate(TEXT, listen(audio)) <= HEARD_SYNTHESIS


def test_pcm_is_24_khz_like_openai(oai: openai.OpenAI) -> None:
    response = oai.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCES[1], response_format="pcm"
    )
    assert response.response.headers["x-voxhelm-sample-rate"] == "24000"
    assert len(response.content) % 2 == 0
    heard = listen(from_pcm16(response.content, 24000, 1))
    assert word_error_rate(SENTENCES[1], heard) <= HEARD_SYNTHESIS


def test_audio_streams_while_it_is_synthesized(oai: openai.OpenAI) -> None:
    text = " ".join(EPISODE)  # eight sentences, about 30 s of speech
    started = time.monotonic()
    arrivals: list[float] = []
    with oai.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="pcm"
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        for chunk in response.iter_bytes():
            if chunk:
                arrivals.append(time.monotonic() - started)
    total = arrivals[-1]
    # One piece per sentence, the first long before the last sentence was synthesized.
    assert len(arrivals) >= len(EPISODE) // 2, arrivals
    assert arrivals[0] < 0.6 * total, arrivals


def test_clients_that_leave_mid_stream_give_their_place_back(http: httpx.Client) -> None:
    # More abandoned streams than the server admits at once (max_concurrency + max_waiting,
    # 1 + 8): if a left stream kept its place, the last request would get a 429.
    body = {"model": "tts-1", "input": " ".join(EPISODE), "response_format": "mp3"}
    for _ in range(12):
        with http.stream("POST", "/v1/audio/speech", json=body) as response:
            assert response.status_code == 200
            next(response.iter_bytes())
    response = http.post("/v1/audio/speech", json={**body, "input": SENTENCES[0]})
    assert response.status_code == 200, response.text
    assert decode(response.content).duration > 1.0


def test_the_default_format_is_a_complete_wav_with_its_length(http: httpx.Client) -> None:
    response = http.post("/v1/audio/speech", json={"model": "piper", "input": SENTENCES[0]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert int(response.headers["content-length"]) == len(response.content)
    riff_size = int.from_bytes(response.content[4:8], "little")
    assert riff_size == len(response.content) - 8


def test_speed_and_language_are_honoured(http: httpx.Client) -> None:
    def duration(**extra: Any) -> float:
        body = {"model": "auto", "input": SENTENCES[2], "response_format": "flac", **extra}
        response = http.post("/v1/audio/speech", json=body)
        assert response.status_code == 200, response.text
        return decode(response.content).duration

    assert duration(speed=2.0) < 0.8 * duration()
    assert duration(language="en", voice="en_US-joe-medium") == pytest.approx(duration(), abs=0.3)


def test_a_voice_may_be_given_as_an_object(http: httpx.Client) -> None:
    body = {"model": "tts-1", "input": "Hello.", "voice": {"id": "en_US-joe-medium"}}
    response = http.post("/v1/audio/speech", json=body)
    assert response.status_code == 200
    assert response.headers["x-voxhelm-voice"] == "en_US-joe-medium"


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"model": "tts-1", "input": "Hi.", "voice": "mary"}, "voice", "Unknown voice 'mary'"),
        ({"model": "tts-1", "input": "Hi.", "voice": 7}, "voice", "voice name"),
        ({"model": "tts-1", "input": "   "}, "input", "non-empty string"),
        ({"model": "tts-1"}, "input", "non-empty string"),
        ({"model": "tts-1", "input": "x" * 5001}, "input", "5000 character limit"),
        ({"model": "tts-1", "input": "Hi.", "speed": 0.2}, "speed", "between 0.25 and 4.0"),
        ({"model": "tts-1", "input": "Hi.", "speed": 4.5}, "speed", "between 0.25 and 4.0"),
        ({"model": "tts-1", "input": "Hi.", "speed": True}, "speed", "between 0.25 and 4.0"),
        ({"model": "tts-1", "input": "Hi.", "speed": "1"}, "speed", "between 0.25 and 4.0"),
        (
            {"model": "tts-1", "input": "Hi.", "response_format": "mp4"},
            "response_format",
            "Accepted values: aac, flac, mp3, ogg, opus, pcm, wav.",
        ),
        ({"model": "whisper-1", "input": "Hi."}, "model", "Unsupported model 'whisper-1'"),
        ({"input": "Hi."}, "model", "The 'model' field is required."),
        (
            {"model": "tts-1", "input": "Hi.", "stream_format": "sse"},
            "stream_format",
            "stream_format=audio",
        ),
        ({"model": "tts-1", "input": "?!"}, "input", "nothing to speak"),
    ],
)
def test_bad_requests_get_a_400_naming_the_field(
    http: httpx.Client, body: dict[str, Any], param: str, message: str
) -> None:
    response = http.post("/v1/audio/speech", json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]


def test_an_unknown_voice_is_a_400_for_the_openai_client(oai: openai.OpenAI) -> None:
    # The reference answered a 500 here.
    with pytest.raises(openai.BadRequestError) as caught:
        oai.audio.speech.create(model="tts-1", voice="no-such-voice", input="Hello.")
    assert caught.value.status_code == 400
    assert "Unknown voice" in caught.value.message


def test_the_body_must_be_json(http: httpx.Client) -> None:
    response = http.post("/v1/audio/speech", data={"model": "tts-1", "input": "Hi."})
    assert response.status_code == 400
    assert error_of(response)["message"] == "Speech synthesis requires application/json."
    response = http.post(
        "/v1/audio/speech", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_it_needs_a_producer_token(server: ServerProcess) -> None:
    with server.client(token=None) as anonymous:
        response = anonymous.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi."})
        assert response.status_code == 401
        assert anonymous.get("/v1/audio/voices").status_code == 401


def test_it_lists_the_voices(http: httpx.Client) -> None:
    response = http.get("/v1/audio/voices")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    (voice,) = body["data"]
    assert voice["id"] == voice["name"] == "en_US-joe-medium"
    assert voice["language"] == "en_US"
    assert voice["languages"] == ["en", "en_US"]
    assert voice["sample_rate"] == 22050
    assert voice["default"] is True
    assert "alloy" in voice["aliases"] and "nova" in voice["aliases"]
    assert voice["source"] == "bundled"


def test_the_openapi_document_describes_speech(http: httpx.Client) -> None:
    doc = http.get("/v1/openapi.json").json()
    post = doc["paths"]["/v1/audio/speech"]["post"]
    assert {"audio/wav", "audio/mpeg", "audio/pcm"} <= set(post["responses"]["200"]["content"])
    assert {"400", "401", "429"} <= set(post["responses"])
    assert "get" in doc["paths"]["/v1/audio/voices"]

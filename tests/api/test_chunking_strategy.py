"""chunking_strategy on POST /v1/audio/transcriptions: auto, or OpenAI's server_vad object,
whose parameters decide where long audio is cut into windows.

The official client sends the object in multipart as ``chunking_strategy[type]=server_vad``,
``chunking_strategy[threshold]=0.6``, ... (one form field per key); other clients send the
object as JSON text in one field. Bad values are refused in process, before any audio is
decoded; transcripts come from a real server process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.speech import BOOK, HEARD_SYNTHESIS, Speech, passage, synthesize, word_error_rate
from voxhelm.stt import windows
from voxhelm.stt.windows import SpeechPauses

PATH = "/v1/audio/transcriptions"
SERVER_VAD = {
    "type": "server_vad",
    "threshold": 0.6,
    "silence_duration_ms": 400,
    "prefix_padding_ms": 200,
}


@pytest.fixture(scope="module")
def oai_sent(server: ServerProcess) -> Iterator[tuple[openai.OpenAI, list[bytes]]]:
    """The official client, and the bodies of the requests it sent."""
    sent: list[bytes] = []

    def record(request: httpx.Request) -> None:
        sent.append(request.read())

    with httpx.Client(event_hooks={"request": [record]}, timeout=300) as http:
        yield (
            openai.OpenAI(
                base_url=f"{server.url}/v1",
                api_key=PRODUCER_TOKEN,
                max_retries=0,
                http_client=http,
            ),
            sent,
        )


@pytest.mark.slow
def test_the_openai_client_sends_server_vad_and_gets_the_whole_passage(
    oai_sent: tuple[openai.OpenAI, list[bytes]],
) -> None:
    oai, sent = oai_sent
    speech = passage(BOOK)
    assert speech.duration > windows.WINDOW_SECONDS + windows.MIN_TAIL_SECONDS  # it is cut
    result = oai.audio.transcriptions.create(
        model="whisper-1",
        file=("book.wav", speech.wav_bytes()),
        response_format="verbose_json",
        chunking_strategy=SERVER_VAD,  # type: ignore[arg-type]
    )
    assert b'name="chunking_strategy[silence_duration_ms]"\r\n\r\n400\r\n' in sent[-1]
    assert word_error_rate(speech.text, result.text) <= HEARD_SYNTHESIS, result.text
    assert result.duration == pytest.approx(speech.duration, abs=0.1)
    starts = [segment.start for segment in result.segments or []]
    assert starts == sorted(starts) and starts[-1] > 40


@pytest.mark.slow
def test_the_object_as_json_text_is_read_too(server: ServerProcess) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    with server.client() as client:
        response = client.post(
            PATH,
            files={"file": ("clip.wav", clip.wav_bytes(), "audio/wav")},
            data={"model": "whisper-1", "chunking_strategy": json.dumps(SERVER_VAD)},
        )
    assert response.status_code == 200, response.text
    assert "kitchen" in response.json()["text"].lower()


@pytest.mark.slow
def test_the_openai_client_hears_why_a_value_is_refused(
    oai_sent: tuple[openai.OpenAI, list[bytes]],
) -> None:
    oai, _ = oai_sent
    clip = synthesize("Please turn on the kitchen lights.")
    with pytest.raises(openai.BadRequestError) as refused:
        oai.audio.transcriptions.create(
            model="whisper-1",
            file=("clip.wav", clip.wav_bytes()),
            chunking_strategy={**SERVER_VAD, "threshold": 1.5},  # type: ignore[typeddict-item]
        )
    assert refused.value.status_code == 400
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["param"] == "chunking_strategy"
    assert "threshold" in error["message"] and "0 to 1" in error["message"]


def form(chunking: dict[str, str]) -> dict[str, Any]:
    upload = SimpleUploadedFile("clip.wav", b"RIFF", "audio/wav")
    return {"file": upload, "model": "whisper-1", **chunking}


def brackets(value: dict[str, Any]) -> dict[str, str]:
    """``value`` as the official client writes an object into a form."""
    return {f"chunking_strategy[{key}]": str(item) for key, item in value.items()}


@pytest.mark.usefixtures("configure")
@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (brackets({**SERVER_VAD, "threshold": 1.5}), "threshold] must be a number from 0 to 1"),
        (brackets({**SERVER_VAD, "threshold": -0.1}), "threshold] must be a number from 0 to 1"),
        (brackets({**SERVER_VAD, "threshold": "loud"}), "threshold] must be a number"),
        (brackets({**SERVER_VAD, "silence_duration_ms": -1}), "silence_duration_ms] must be a"),
        (brackets({**SERVER_VAD, "silence_duration_ms": 5001}), "from 0 to 5000"),
        (brackets({**SERVER_VAD, "prefix_padding_ms": 12.5}), "prefix_padding_ms] must be a"),
        (brackets({**SERVER_VAD, "min_speech_ms": 100}), "no key 'min_speech_ms'"),
        (brackets({"type": "semantic_vad"}), "type] must be server_vad"),
        (brackets({"threshold": 0.5}), "type] must be server_vad"),
        ({"chunking_strategy": "sometimes"}, "auto or a server_vad object"),
        ({"chunking_strategy": '{"type": "server_vad"'}, "auto or a server_vad object"),
        ({"chunking_strategy": '{"type": "server_vad", "threshold": true}'}, "threshold]"),
        ({"chunking_strategy": "auto", "chunking_strategy[type]": "server_vad"}, "once"),
    ],
)
def test_a_bad_chunking_strategy_is_a_400_naming_it(
    client: Any, auth_headers: dict[str, str], fields: dict[str, str], says: str
) -> None:
    response = client.post(PATH, form(fields), headers=auth_headers)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "chunking_strategy"
    assert says in error["message"], error


@pytest.mark.usefixtures("configure")
def test_the_json_form_refuses_a_bad_object_too(client: Any, auth_headers: dict[str, str]) -> None:
    body = {"url": "https://media.example.com/a.mp3", "model": "whisper-1"}
    body["chunking_strategy"] = {**SERVER_VAD, "prefix_padding_ms": 9000}  # type: ignore[assignment]
    response = client.post(
        PATH, json.dumps(body), content_type="application/json", headers=auth_headers
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == "chunking_strategy"
    assert "prefix_padding_ms" in error["message"]


@pytest.fixture
def cutter_rules(monkeypatch: pytest.MonkeyPatch) -> list[SpeechPauses | None]:
    """The cutting rules each transcription was given; the real transcription still runs."""
    seen: list[SpeechPauses | None] = []
    real = windows.transcribe

    def spy(*args: Any, pauses: SpeechPauses | None = None, **kwargs: Any) -> Any:
        seen.append(pauses)
        return real(*args, pauses=pauses, **kwargs)

    monkeypatch.setattr(windows, "transcribe", spy)
    return seen


@pytest.mark.slow
@pytest.mark.usefixtures("configure")
@pytest.mark.parametrize(
    ("fields", "rules"),
    [
        (brackets(SERVER_VAD), SpeechPauses(threshold=0.6, silence_ms=400, prefix_padding_ms=200)),
        ({"chunking_strategy": json.dumps(SERVER_VAD)}, SpeechPauses(0.6, 400, 200)),
        (brackets({"type": "server_vad"}), SpeechPauses(0.5, 500, 300)),
        ({"chunking_strategy": "auto"}, None),
        ({}, None),
    ],
)
def test_the_parameters_reach_the_window_cutter(
    client: Any,
    auth_headers: dict[str, str],
    cutter_rules: list[SpeechPauses | None],
    fields: dict[str, str],
    rules: SpeechPauses | None,
) -> None:
    speech: Speech = synthesize("Please turn on the kitchen lights.")
    upload = SimpleUploadedFile("clip.wav", speech.wav_bytes(), "audio/wav")
    response = client.post(
        PATH, {"file": upload, "model": "whisper-1", **fields}, headers=auth_headers
    )
    assert response.status_code == 200, response.content
    assert "kitchen" in response.json()["text"].lower()
    assert cutter_rules == [rules]

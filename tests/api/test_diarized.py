"""OpenAI's diarizing surface of POST /v1/audio/transcriptions, with the official client.

The session server (real ``voxhelm serve``, the bundled STT model and the embedded ``onnx``
diarization) hears a synthetic conversation of two distinct voices with known turns
(Piper's and an espeak-ng voice); every labeled segment is checked against who really spoke
then. Known speakers are short clips of the same voices saying other sentences, sent as
data URLs as OpenAI's clients send them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openai.types.audio import TranscriptionDiarized

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.diarization.conversation import TWO_SPEAKERS, Conversation, Line, converse, has_espeak
from tests.jobs.media_server import serve_media
from tests.speech import synthesize, word_error_rate
from voxhelm.config import Config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run"),
]

DIARIZE = "gpt-4o-transcribe-diarize"
LETTERS = {"piper": "A", "ava": "B"}  # Piper opens the conversation
NAMES = {"piper": "Joe", "ava": "Ava"}


@pytest.fixture(scope="module")
def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    return converse(TWO_SPEAKERS)


@pytest.fixture(scope="module")
def references() -> list[str]:
    """Joe's and Ava's clips (3-6 s each, other sentences than the conversation's)."""
    joe = converse([Line("piper", "Fresh bread from the bakery on the corner sells out early.")])
    ava = converse([Line("ava", "The museum opened a new exhibition about ancient maps.")])
    return [data_url(joe.wav_bytes()), data_url(ava.wav_bytes())]


@pytest.fixture
def no_leaks(server: ServerProcess) -> Iterator[None]:
    """No temporary file outlives a request, whatever it did."""
    yield
    assert sorted(p.name for p in server.tmp_dir.iterdir()) == []


def data_url(body: bytes, media_type: str = "audio/wav") -> str:
    return f"data:{media_type};base64,{base64.b64encode(body).decode()}"


def post(server: ServerProcess, files: Any = None, **fields: Any) -> httpx.Response:
    clip = synthesize("Please turn on the kitchen lights.")
    with server.client() as client:
        return client.post(
            "/v1/audio/transcriptions",
            files=files or {"file": ("clip.wav", clip.wav_bytes(), "audio/wav")},
            data=fields,
        )


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_the_openai_client_reads_a_diarized_transcript_with_the_right_speakers(
    oai: openai.OpenAI, conversation: Conversation, no_leaks: None
) -> None:
    result = oai.audio.transcriptions.create(
        model=DIARIZE,
        file=("talk.wav", conversation.wav_bytes()),
        response_format="diarized_json",
        chunking_strategy="auto",
    )
    assert isinstance(result, TranscriptionDiarized)
    assert result.task == "transcribe"
    assert result.duration == pytest.approx(conversation.duration, abs=0.1)
    spoken = " ".join(line.text for line in conversation.lines)
    assert word_error_rate(spoken, result.text) <= 0.15, result.text
    assert len(result.segments) >= len(conversation.lines)
    for number, segment in enumerate(result.segments):
        assert segment.type == "transcript.text.segment"
        assert segment.id == f"seg_{number}"
        assert segment.text == segment.text.strip() and segment.text
        truth = conversation.speaker_at(segment.start, segment.end)
        assert segment.speaker == LETTERS[truth], segment
    assert result.text == " ".join(s.text for s in result.segments)


def test_known_speakers_name_the_segments_they_speak(
    oai: openai.OpenAI, conversation: Conversation, references: list[str], no_leaks: None
) -> None:
    result = oai.audio.transcriptions.create(
        model=DIARIZE,
        file=("talk.wav", conversation.wav_bytes()),
        response_format="diarized_json",
        known_speaker_names=["Joe", "Ava"],
        known_speaker_references=references,
    )
    assert isinstance(result, TranscriptionDiarized)
    assert result.segments
    for segment in result.segments:
        truth = conversation.speaker_at(segment.start, segment.end)
        assert segment.speaker == NAMES[truth], segment


def test_a_streamed_diarized_transcript_sends_each_segment_with_its_speaker(
    oai: openai.OpenAI, conversation: Conversation, no_leaks: None
) -> None:
    events = list(
        oai.audio.transcriptions.create(
            model=DIARIZE,
            file=("talk.wav", conversation.wav_bytes()),
            response_format="diarized_json",
            stream=True,
        )
    )
    segments = [e for e in events if e.type == "transcript.text.segment"]
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert segments
    # Each segment's text comes first as a delta naming it, then the segment itself.
    pair = ["transcript.text.delta", "transcript.text.segment"]
    assert [e.type for e in events] == pair * len(segments) + ["transcript.text.done"]
    for delta, segment in zip(deltas, segments, strict=True):
        assert delta.segment_id == segment.id
        assert delta.delta.strip() == segment.text
        truth = conversation.speaker_at(segment.start, segment.end)
        assert segment.speaker == LETTERS[truth], segment
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert done.text == " ".join(s.text for s in segments)
    assert "".join(d.delta for d in deltas) == done.text


def test_the_diarizing_model_answers_plain_text_formats_without_speakers(
    oai: openai.OpenAI,
) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    result = oai.audio.transcriptions.create(model=DIARIZE, file=("clip.wav", clip.wav_bytes()))
    assert "kitchen" in result.text.lower()
    text = oai.audio.transcriptions.create(
        model=DIARIZE, file=("clip.wav", clip.wav_bytes()), response_format="text"
    )
    assert isinstance(text, str) and "kitchen" in text.lower()


def test_any_model_diarizes_when_asked_for_diarized_json(
    server: ServerProcess, conversation: Conversation
) -> None:
    files = {"file": ("talk.wav", conversation.wav_bytes(), "audio/wav")}
    response = post(server, files, model="whisper-1", response_format="diarized_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {s["speaker"] for s in body["segments"]} == {"A", "B"}


def test_a_json_url_request_diarizes_with_known_speakers_too(
    server: ServerProcess, conversation: Conversation, references: list[str], no_leaks: None
) -> None:
    with serve_media() as media:
        url = media.add("/talk.wav", "audio/wav", conversation.wav_bytes())
        with server.client() as client:
            response = client.post(
                "/v1/audio/transcriptions",
                json={
                    "url": url,
                    "model": DIARIZE,
                    "response_format": "diarized_json",
                    "chunking_strategy": "auto",
                    "known_speaker_names": ["Joe", "Ava"],
                    "known_speaker_references": references,
                },
            )
    assert response.status_code == 200, response.text
    segments = TranscriptionDiarized.model_validate(response.json()).segments
    assert segments
    for segment in segments:
        assert segment.speaker == NAMES[conversation.speaker_at(segment.start, segment.end)]


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"diarize": "true"}, "diarize", "Unknown field"),
        ({"response_format": "diarized_json", "num_speakers": "2"}, "num_speakers", "Unknown"),
        ({"response_format": "verbose_json"}, "response_format", "diarized_json"),
        ({"response_format": "srt"}, "response_format", "diarized_json"),
        ({"prompt": "Kitchen."}, "prompt", "not supported"),
        ({"chunking_strategy": "sometimes"}, "chunking_strategy", "auto"),
        (
            {"chunking_strategy[type]": "server_vad", "chunking_strategy[eagerness]": "low"},
            "chunking_strategy",
            "eagerness",
        ),
        (
            {"response_format": "diarized_json", "known_speaker_names[]": "Joe"},
            "known_speaker_references",
            "one reference per name",
        ),
        (
            {
                "response_format": "json",
                "known_speaker_names[]": "Joe",
                "known_speaker_references[]": "data:audio/wav;base64,AAAA",
            },
            "known_speaker_names",
            "diarized_json",
        ),
    ],
)
def test_it_refuses_what_it_would_otherwise_ignore(
    server: ServerProcess, fields: dict[str, str], param: str, says: str, no_leaks: None
) -> None:
    response = post(server, model=DIARIZE, **fields)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["param"] == param, error
    assert says in error["message"], error


def test_unknown_fields_are_refused_on_every_model_and_on_translations(
    server: ServerProcess,
) -> None:
    for path, model in (
        ("/v1/audio/transcriptions", "whisper-1"),
        ("/v1/audio/translations", "whisper-1"),
    ):
        clip = synthesize("Please turn on the kitchen lights.")
        with server.client() as client:
            response = client.post(
                path,
                files={"file": ("clip.wav", clip.wav_bytes(), "audio/wav")},
                data={"model": model, "speakers": "2"},
            )
        assert response.status_code == 400, (path, response.text)
        assert error_of(response)["param"] == "speakers"
    translation = post(server, model="whisper-1", response_format="diarized_json")
    assert translation.status_code == 200  # a transcription may ask for speakers...
    with server.client() as client:
        refused = client.post(
            "/v1/audio/translations",
            files={"file": ("clip.wav", synthesize("Hello.").wav_bytes(), "audio/wav")},
            data={"model": "whisper-1", "response_format": "diarized_json"},
        )
    assert refused.status_code == 400  # ...a translation may not
    assert error_of(refused)["param"] == "response_format"


def test_a_second_file_part_is_refused(server: ServerProcess) -> None:
    clip = synthesize("Please turn on the kitchen lights.").wav_bytes()
    files = [("file", ("clip.wav", clip, "audio/wav")), ("reference", ("r.wav", clip, "audio/wav"))]
    with server.client() as client:
        response = client.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
    assert response.status_code == 400
    assert error_of(response)["param"] == "reference"


def bad_reference(kind: str) -> str:
    short = synthesize("Hi.").wav_bytes()
    long = converse([Line("piper", " ".join(["The quick brown fox jumps."] * 8))]).wav_bytes()
    return {
        "not a data url": "https://media.example.com/joe.wav",
        "not base64": "data:audio/wav,RIFF",
        "bad base64": "data:audio/wav;base64,@@@@",
        "not audio": data_url(b"plain text, no audio at all " * 50),
        "too short": data_url(short),
        "too long": data_url(long),
        # Over the 2 MiB a reference may hold, under the server's 4 MiB for the request.
        "too large": data_url(b"\0" * (2 * 1024 * 1024 + 4096)),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "status", "says"),
    [
        ("not a data url", 400, "data URL"),
        ("not base64", 400, "base64"),
        ("bad base64", 400, "base64"),
        ("not audio", 400, "decoded"),
        ("too short", 400, "between 2 and 10 seconds"),
        ("too long", 400, "between 2 and 10 seconds"),
        ("too large", 413, "MiB"),
    ],
)
def test_a_reference_is_refused_before_any_work_when_it_cannot_be_used(
    server: ServerProcess, references: list[str], kind: str, status: int, says: str, no_leaks: None
) -> None:
    response = post(
        server,
        model=DIARIZE,
        response_format="diarized_json",
        **{
            "known_speaker_names[]": ["Joe", "Ava"],
            "known_speaker_references[]": [references[0], bad_reference(kind)],
        },
    )
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["param"] == "known_speaker_references", error
    assert says in error["message"], error
    assert "media.example.com" not in error["message"]


def test_it_refuses_more_than_four_or_repeated_speaker_names(
    server: ServerProcess, references: list[str]
) -> None:
    five = post(
        server,
        model=DIARIZE,
        response_format="diarized_json",
        **{
            "known_speaker_names[]": ["A1", "B1", "C1", "D1", "E1"],
            "known_speaker_references[]": [references[0]] * 5,
        },
    )
    assert five.status_code == 400 and "4" in error_of(five)["message"]
    twice = post(
        server,
        model=DIARIZE,
        response_format="diarized_json",
        **{
            "known_speaker_names[]": ["Joe", "Joe"],
            "known_speaker_references[]": references,
        },
    )
    assert twice.status_code == 400 and error_of(twice)["param"] == "known_speaker_names"
    # "Speaker 2" is how an unknown voice is labelled: a known one may not be called so.
    anonymous = post(
        server,
        model=DIARIZE,
        response_format="diarized_json",
        **{
            "known_speaker_names[]": ["Joe", "Speaker 2"],
            "known_speaker_references[]": references,
        },
    )
    assert anonymous.status_code == 400
    assert error_of(anonymous)["param"] == "known_speaker_names"


def test_without_a_diarization_backend_diarized_json_is_refused_before_any_work(
    configure: Callable[..., Config], client: Any, auth_headers: dict[str, str]
) -> None:
    # In process (no server to start with another setting): refused while validating, so
    # nothing is decoded or transcribed.
    configure(VOXHELM_DIARIZATION_BACKEND="none")
    upload = SimpleUploadedFile("clip.wav", b"RIFF not even audio", "audio/wav")
    response = client.post(
        "/v1/audio/transcriptions",
        {"file": upload, "model": DIARIZE, "response_format": "diarized_json"},
        headers=auth_headers,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("diarization_unavailable", "response_format")
    plain = client.post(
        "/v1/audio/transcriptions",
        {"file": SimpleUploadedFile("clip.wav", b"RIFF", "audio/wav"), "model": DIARIZE},
        headers=auth_headers,
    )
    assert plain.json()["error"]["code"] == "unsupported_media"  # json needs no diarization

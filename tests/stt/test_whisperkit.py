"""The WhisperKit engine: an HTTP client for an OpenAI-compatible transcription server.

``whisperkit-cli`` runs only on Apple Silicon, so the server here is a second real
``voxhelm serve`` process on loopback: it speaks the same OpenAI ``verbose_json`` protocol
with the bundled tiny.en model. Answers that a healthy server never gives (HTTP 500, broken
JSON) come from a small ``http.server`` on loopback, which also records the raw request.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import io
import json
import threading
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess, free_port, make_config, start_server
from tests.speech import passage, synthesize, word_error_rate
from voxhelm import audio
from voxhelm.stt.base import BackendUnavailable, TranscriptionFailed, TranscriptionRequest
from voxhelm.stt.registry import Engines
from voxhelm.stt.whisperkit import DISABLED, WhisperKitBackend, endpoint


def backend(base_url: str, api_key: str = PRODUCER_TOKEN, **env: str) -> WhisperKitBackend:
    settings = {
        "VOXHELM_WHISPERKIT_ENABLED": "true",
        "VOXHELM_WHISPERKIT_BASE_URL": base_url,
        "VOXHELM_WHISPERKIT_MODEL": "tiny.en",
        "VOXHELM_WHISPERKIT_TIMEOUT_SECONDS": "60",
    }
    config = make_config(None, **(settings | env))
    return WhisperKitBackend(config.stt.whisperkit, api_key=api_key)


@pytest.fixture(scope="module")
def clip() -> audio.Audio:
    return audio.decode(synthesize("Please turn on the kitchen lights.").wav_bytes())


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # a free port: nothing listens there


# -- configuration ----------------------------------------------------------------------


def test_it_is_disabled_by_default(clip: audio.Audio) -> None:
    engine = WhisperKitBackend(make_config().stt.whisperkit)
    assert engine.check() == [DISABLED]
    with pytest.raises(BackendUnavailable) as caught:
        engine.transcribe(clip, TranscriptionRequest())
    assert str(caught.value) == (
        "WhisperKit is disabled. Set VOXHELM_WHISPERKIT_ENABLED=true to use it."
    )


@pytest.mark.parametrize(
    "base_url",
    ["ftp://127.0.0.1/v1", "127.0.0.1:50060/v1", "/v1", "http:///v1", "http://127.0.0.1:99999/v1"],
)
def test_it_needs_an_absolute_http_base_url(base_url: str, clip: audio.Audio) -> None:
    engine = backend(base_url)
    (problem,) = engine.check()
    assert "absolute http(s) URL" in problem
    with pytest.raises(BackendUnavailable, match="absolute http"):
        engine.transcribe(clip, TranscriptionRequest())


def test_the_endpoint_keeps_the_query_and_hides_credentials() -> None:
    target = endpoint("https://user:secret@[::1]:8443/base/v1/?tenant=a")
    assert (target.https, target.host, target.port) == (True, "::1", 8443)
    assert target.target == "/base/v1/audio/transcriptions?tenant=a"
    assert target.display == "https://[::1]:8443/base/v1/"
    assert "secret" not in target.display


# -- a real OpenAI-compatible server -------------------------------------------------------


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A second real ``voxhelm serve``, standing in for ``whisperkit-cli serve``."""
    server = start_server(tmp_path_factory.mktemp("whisperkit-sidecar"))
    yield server
    server.stop()


@pytest.mark.slow
def test_it_transcribes_real_speech_through_the_server(sidecar: ServerProcess) -> None:
    speech = passage()
    decoded = audio.decode(speech.wav_bytes())
    engine = backend(f"{sidecar.url}/v1")
    assert engine.check() == []
    transcript = engine.transcribe(decoded, TranscriptionRequest(language="en"))
    assert word_error_rate(speech.text, transcript.text) <= 0.15, transcript.text
    assert (transcript.backend, transcript.model) == ("whisperkit", "tiny.en")
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(decoded.duration)
    assert len(transcript.segments) >= 2
    assert all(0 <= s.start <= s.end <= decoded.duration + 0.5 for s in transcript.segments)
    assert transcript.segments[0].avg_logprob is not None  # verbose_json statistics survive


@pytest.mark.slow
def test_a_rejected_request_is_a_failure_not_unavailability(
    sidecar: ServerProcess, clip: audio.Audio
) -> None:
    with pytest.raises(TranscriptionFailed, match="HTTP 401"):
        backend(f"{sidecar.url}/v1", api_key="wrong-token").transcribe(clip, TranscriptionRequest())
    unknown = backend(f"{sidecar.url}/v1", VOXHELM_WHISPERKIT_MODEL="large-v3-v20240930")
    with pytest.raises(TranscriptionFailed, match="HTTP 400"):
        unknown.transcribe(clip, TranscriptionRequest())


def test_a_server_that_is_not_running_is_unavailable(clip: audio.Audio) -> None:
    base = dead_url()
    with pytest.raises(BackendUnavailable) as caught:
        backend(base).transcribe(clip, TranscriptionRequest())
    assert str(caught.value) == (
        f"WhisperKit server '{base}' is not reachable. Check the sidecar process and URL config."
    )


@pytest.mark.slow
def test_an_unreachable_primary_falls_back_to_another_engine(clip: audio.Audio) -> None:
    stt = make_config(
        VOXHELM_STT_BACKEND="whisperkit",
        VOXHELM_STT_FALLBACK_BACKEND="fasterwhisper",
        VOXHELM_WHISPERKIT_ENABLED="true",
        VOXHELM_WHISPERKIT_BASE_URL=dead_url(),
    ).stt
    transcript = Engines().transcribe(clip, "whisper-1", TranscriptionRequest(), stt)
    assert transcript.backend == "fasterwhisper"
    assert "kitchen" in transcript.text.lower()


# -- answers a healthy server never gives --------------------------------------------------


class Recorder(http.server.ThreadingHTTPServer):
    """Records each request and answers every one with ``status`` and ``body``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.status = 500
        self.body = b"{}"
        self.requests: list[dict[str, Any]] = []


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
        )
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    httpd = Recorder()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def answer(recorder: Recorder, status: int, body: bytes) -> WhisperKitBackend:
    recorder.status, recorder.body = status, body
    return backend(f"{recorder.url}/v1/?tenant=a")


def form_parts(request: dict[str, Any]) -> list[Any]:
    content_type = request["headers"]["Content-Type"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request["body"]
    )
    return list(message.iter_parts())


def test_it_posts_the_openai_form_with_the_audio_as_16_khz_wav(
    recorder: Recorder, clip: audio.Audio
) -> None:
    engine = answer(recorder, 200, json.dumps({"text": " Hi.", "language": "en"}).encode())
    request = TranscriptionRequest(language="en", prompt="Kitchen\r\nlights")
    transcript = engine.transcribe(clip, request)
    (sent,) = recorder.requests
    assert sent["path"] == "/v1/audio/transcriptions?tenant=a"
    assert sent["headers"]["Authorization"] == f"Bearer {PRODUCER_TOKEN}"
    assert sent["headers"]["Content-Type"].startswith("multipart/form-data; boundary=voxhelm-")
    assert int(sent["headers"]["Content-Length"]) == len(sent["body"])
    parts = form_parts(sent)
    assert [(p.get_param("name", header="content-disposition")) for p in parts] == [
        "model",
        "response_format",
        "timestamp_granularities[]",
        "language",
        "prompt",
        "file",
    ]
    assert [p.get_content() for p in parts[:5]] == [
        "tiny.en",
        "verbose_json",
        "segment",
        "en",
        "Kitchen\r\nlights",
    ]
    wav = parts[5].get_payload(decode=True)
    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (
            16000,
            1,
            2,
        )
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    assert len(samples) == len(clip.samples)
    assert np.allclose(samples / 32767.0, clip.samples, atol=1e-4)
    assert transcript.text == "Hi."
    assert [(s.start, s.end, s.text) for s in transcript.segments] == [(0.0, 0.0, "Hi.")]


def test_it_sends_no_authorization_without_an_api_key(
    recorder: Recorder, clip: audio.Audio
) -> None:
    recorder.status, recorder.body = 200, b'{"text": ""}'
    backend(f"{recorder.url}/v1", api_key="").transcribe(clip, TranscriptionRequest())
    (sent,) = recorder.requests
    assert "Authorization" not in sent["headers"]
    names = [p.get_param("name", header="content-disposition") for p in form_parts(sent)]
    assert names == ["model", "response_format", "timestamp_granularities[]", "file"]


def test_a_server_error_fails_and_logs_the_body_without_showing_it(
    recorder: Recorder, clip: audio.Audio, caplog: pytest.LogCaptureFixture
) -> None:
    engine = answer(recorder, 500, b'{"error": "model crashed at /Users/op/models"}')
    with pytest.raises(TranscriptionFailed) as caught:
        engine.transcribe(clip, TranscriptionRequest())
    assert str(caught.value) == "WhisperKit transcription failed with HTTP 500."
    assert "/Users/op/models" in caplog.text


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"<html>busy</html>", "not JSON"), (b"[1, 2]", "not an object"), (b"\xff\xfe", "not JSON")],
)
def test_a_body_that_is_not_a_json_object_fails(
    recorder: Recorder, clip: audio.Audio, body: bytes, message: str
) -> None:
    with pytest.raises(TranscriptionFailed, match=message):
        answer(recorder, 200, body).transcribe(clip, TranscriptionRequest())


def test_a_failing_primary_is_not_retried_on_the_fallback(
    recorder: Recorder, clip: audio.Audio
) -> None:
    recorder.status, recorder.body = 500, b"{}"
    stt = make_config(
        VOXHELM_STT_BACKEND="whisperkit",
        VOXHELM_STT_FALLBACK_BACKEND="fasterwhisper",
        VOXHELM_WHISPERKIT_ENABLED="true",
        VOXHELM_WHISPERKIT_BASE_URL=f"{recorder.url}/v1",
    ).stt
    with pytest.raises(TranscriptionFailed):
        Engines().transcribe(clip, "whisper-1", TranscriptionRequest(), stt)
    assert len(recorder.requests) == 1

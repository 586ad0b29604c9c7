"""POST /v1/audio/transcriptions over real HTTP with the official openai client.

The server is a real ``voxhelm serve`` process with the bundled tiny.en model; the audio is
Piper speech converted into every supported container.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.media import CONTAINERS, speech_in
from tests.speech import Speech, passage, synthesize, word_error_rate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech() -> Speech:
    return passage()


@pytest.fixture(scope="module")
def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


@pytest.fixture
def no_leaks(server: ServerProcess) -> Iterator[None]:
    """The server must leave no temporary file behind, whatever the request did."""
    yield
    assert sorted(p.name for p in server.tmp_dir.iterdir()) == []


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


@pytest.mark.parametrize("container", CONTAINERS)
def test_the_openai_client_transcribes_every_container(
    oai: openai.OpenAI, speech: Speech, container: str, no_leaks: None
) -> None:
    data = speech_in(container, speech)
    result = oai.audio.transcriptions.create(model="whisper-1", file=(f"speech.{container}", data))
    assert word_error_rate(speech.text, result.text) <= 0.10, result.text


def test_it_answers_verbose_json_with_segments_and_words(
    oai: openai.OpenAI, speech: Speech
) -> None:
    result = oai.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe",
        file=("speech.wav", speech.wav_bytes()),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "english"  # the name, as OpenAI answers it
    assert result.duration == pytest.approx(speech.duration, abs=0.1)
    assert word_error_rate(speech.text, result.text) <= 0.10
    assert result.segments and result.segments[0].start >= 0
    assert all(s.end >= s.start for s in result.segments)
    assert result.words is not None
    assert [w.word.strip().lower().strip(".,") for w in result.words[:3]] == [
        "the",
        "quick",
        "brown",
    ]
    assert result.words[-1].end <= speech.duration + 0.5


@pytest.mark.parametrize(
    ("fmt", "marker"), [("text", None), ("vtt", "WEBVTT"), ("srt", "1\n00:00:0")]
)
def test_it_answers_text_and_subtitle_formats(
    oai: openai.OpenAI, fmt: str, marker: str | None
) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    body = oai.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", clip.wav_bytes()), response_format=fmt
    )
    assert isinstance(body, str)
    if marker:
        assert body.startswith(marker)
    assert "kitchen" in body.lower()


def test_it_names_the_serving_backend_in_headers(server: ServerProcess) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    with server.client() as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("clip.wav", clip.wav_bytes())},
            data={"model": "whisper-1"},
        )
    assert response.status_code == 200
    assert response.headers["X-Voxhelm-Backend"] == "fasterwhisper"
    assert response.headers["X-Voxhelm-Model"] == "tiny.en"
    assert "kitchen" in response.json()["text"].lower()


class MediaHandler(http.server.BaseHTTPRequestHandler):
    """Serves speech at /speech.mp3 and redirects /redirect?to=... on loopback."""

    body = b""
    hits: list[str] = []  # noqa: RUF012 - shared on purpose between handler instances

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def media_server() -> Iterator[str]:
    MediaHandler.body = speech_in("mp3", synthesize("Please turn on the kitchen lights."))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MediaHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def post_url(server: ServerProcess, url: str, **extra: Any) -> httpx.Response:
    with server.client() as client:
        return client.post(
            "/v1/audio/transcriptions", json={"url": url, "model": "whisper-1", **extra}
        )


def test_it_transcribes_a_url_from_a_trusted_host(
    server: ServerProcess, media_server: str, no_leaks: None
) -> None:
    response = post_url(server, f"http://{media_server}/speech.mp3")
    assert response.status_code == 200, response.text
    assert "kitchen" in response.json()["text"].lower()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://not-allowed.example/a.mp3", "allowlist"),
        ("http://media.example.com/a.mp3", "Plain HTTP"),
        ("https://192.168.1.1/a.mp3", "allowlist"),
        ("ftp://127.0.0.1/a.mp3", "https"),
        ("file:///etc/passwd", ""),
    ],
)
def test_it_refuses_urls_outside_the_policy(
    server: ServerProcess, url: str, fragment: str, no_leaks: None
) -> None:
    response = post_url(server, url)
    assert response.status_code == 400
    error = error_of(response)
    assert fragment in error["message"]
    assert error["code"] == "url_not_allowed"


def test_it_refuses_an_allowlisted_name_that_resolves_to_loopback(
    server: ServerProcess, media_server: str, no_leaks: None
) -> None:
    MediaHandler.hits.clear()
    port = media_server.split(":")[1]
    response = post_url(server, f"https://localhost:{port}/speech.mp3")
    assert response.status_code == 400
    assert error_of(response)["code"] == "url_not_allowed"
    assert MediaHandler.hits == []


def test_it_refuses_a_redirect_to_a_disallowed_host(
    server: ServerProcess, media_server: str, no_leaks: None
) -> None:
    MediaHandler.hits.clear()
    port = media_server.split(":")[1]
    target = f"http://localhost:{port}/speech.mp3"  # allowlisted, but not trusted for http
    response = post_url(server, f"http://{media_server}/redirect?to={target}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "url_not_allowed"
    assert MediaHandler.hits == [f"/redirect?to={target}"]


def test_it_validates_the_model_before_downloading(
    server: ServerProcess, media_server: str
) -> None:
    MediaHandler.hits.clear()
    response = post_url(server, f"http://{media_server}/speech.mp3", model="no-such-model")
    assert response.status_code == 400
    assert MediaHandler.hits == []


def multipart(
    server: ServerProcess,
    files: dict[str, Any] | None,
    data: dict[str, Any],
    token: str | None = PRODUCER_TOKEN,
) -> httpx.Response:
    with server.client(token=token) as client:
        return client.post("/v1/audio/transcriptions", files=files, data=data)


WAV = ("clip.wav", b"")  # replaced per test where real audio matters


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "Missing bearer token."), ("wrong-token", "Invalid bearer token.")],
)
def test_it_refuses_requests_without_a_valid_token(
    server: ServerProcess, token: str | None, message: str, no_leaks: None
) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    response = multipart(
        server, {"file": ("clip.wav", clip.wav_bytes())}, {"model": "whisper-1"}, token
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert error_of(response)["message"] == message


def test_the_openai_client_sees_authentication_errors(server: ServerProcess) -> None:
    bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"))


@pytest.mark.parametrize(
    ("files", "data", "status", "code", "fragment"),
    [
        ("no-file", {}, 400, "invalid_request", "file field named 'file'"),
        ("speech", {}, 400, "invalid_request", "'model' field is required"),
        ("speech", {"model": "davinci"}, 400, "model_not_found", "Unsupported model 'davinci'"),
        (
            "speech",
            {"model": "whisper-1", "response_format": "dote"},
            400,
            "invalid_request",
            "Unsupported response_format",
        ),
        (
            "speech",
            {"model": "whisper-1", "language": "xx"},
            400,
            "unsupported_language",
            "Unsupported language",
        ),
        (
            "speech",
            {"model": "whisper-1", "timestamp_granularities[]": "word"},
            400,
            "invalid_request",
            "verbose_json",
        ),
        (
            ("junk.mp3", b"\x00\x01garbage" * 500),
            {"model": "whisper-1"},
            400,
            "unsupported_media",
            "",
        ),
        (("empty.wav", b""), {"model": "whisper-1"}, 400, "unsupported_media", ""),
        (
            ("big.wav", b"\0" * (4 * 1024 * 1024 + 1)),
            {"model": "whisper-1"},
            413,
            "payload_too_large",
            "4 MiB transcription limit",
        ),
    ],
)
def test_it_answers_bad_input_with_the_right_status(
    server: ServerProcess,
    files: Any,
    data: dict[str, str],
    status: int,
    code: str,
    fragment: str,
    no_leaks: None,
) -> None:
    if files == "speech":
        files = {"file": ("clip.wav", synthesize("Please turn on the kitchen lights.").wav_bytes())}
    elif files == "no-file":
        files = {"model": (None, "whisper-1")}  # multipart, but only a plain field
    else:
        files = {"file": files}
    response = multipart(server, files, data)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    assert fragment in error["message"]
    assert str(server.var_dir.parent) not in error["message"]  # no paths leak
    assert "Traceback" not in error["message"]


def test_it_refuses_an_upload_far_over_the_limit_before_reading_it(
    server: ServerProcess, no_leaks: None
) -> None:
    body = b"\0" * (16 * 1024 * 1024)
    with server.client() as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("huge.wav", body)},
            data={"model": "whisper-1"},
        )
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


def test_it_answers_unsupported_content_types(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.post(
            "/v1/audio/transcriptions", content=b"x", headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 400
    assert "Unsupported content type" in error_of(response)["message"]


def test_it_answers_bad_json_bodies(server: ServerProcess) -> None:
    with server.client() as client:
        for body, message in (
            (b"{not json", "Request body was not valid JSON."),
            (b"[1]", "JSON request body must be an object."),
            (json.dumps({"model": "whisper-1"}).encode(), "non-empty 'url'"),
        ):
            response = client.post(
                "/v1/audio/transcriptions",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 400
            assert message in error_of(response)["message"]

"""The server and the model store: no download inside a request, a missing default pulled at
start, a pulled model used for real transcriptions, and removal while a request runs."""

from __future__ import annotations

import sysconfig
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import METRICS_TOKEN, PRODUCER_TOKEN, ServerProcess, start_server
from tests.hubserver import Hub
from tests.modelstore.conftest import Cli
from tests.speech import Speech, long_recording, passage, word_error_rate

pytestmark = pytest.mark.slow

WHISPER_CPP = Path(sysconfig.get_path("scripts")) / "whisper-cpp"


@pytest.fixture(scope="module")
def speech() -> Speech:
    return passage()


def client_for(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


@pytest.fixture
def serve(tmp_path: Path, hub: Hub) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        server = start_server(
            tmp_path, {"HF_ENDPOINT": hub.url, "VOXHELM_METRICS_TOKEN": METRICS_TOKEN, **env}
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def transcribe(server: ServerProcess, speech: Speech, model: str) -> httpx.Response:
    with server.client() as client:
        return client.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", speech.wav_bytes(), "audio/wav")},
            data={"model": model},
        )


def test_a_model_not_installed_is_refused_and_one_pull_makes_it_usable(
    serve: Any, cli: Cli, hub: Hub, speech: Speech
) -> None:
    server = serve()
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(server).audio.transcriptions.create(
            model="small", file=("speech.wav", speech.wav_bytes())
        )
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": "The model 'small' is not installed on this server. An operator can install "
        "it with: voxhelm models pull small",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_installed",
    }
    assert hub.requests == []  # the request downloaded nothing

    assert "small" not in [m.id for m in client_for(server).models.list()]
    assert cli.run("pull", "small").returncode == 0  # the same var/ as the server
    listed = {m.id: m.model_extra["voxhelm"] for m in client_for(server).models.list()}
    assert listed["small"]["installed"] is True
    assert listed["small"]["available"] is True
    assert listed["small"]["size_bytes"] > 78_000_000
    result = client_for(server).audio.transcriptions.create(
        model="small", file=("speech.wav", speech.wav_bytes())
    )
    assert word_error_rate(speech.text, result.text) <= 0.10, result.text
    unknown = transcribe(server, speech, "no-such-model")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "model_not_found"


def test_serve_pulls_a_missing_default_before_it_is_ready(
    serve: Any, hub: Hub, speech: Speech
) -> None:
    server = serve(VOXHELM_FASTERWHISPER_MODEL="small")
    log = server.log()
    assert log.index("pulling small: 100%") < log.index("Voxhelm is ready")
    assert len(hub.file_requests("model.bin")) == 1
    result = client_for(server).audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", speech.wav_bytes())
    )
    assert word_error_rate(speech.text, result.text) <= 0.10, result.text
    response = transcribe(server, speech, "whisper-1")
    assert response.headers["X-Voxhelm-Model"] == "small"


def test_serve_refuses_to_start_when_the_default_cannot_be_pulled(tmp_path: Path, hub: Hub) -> None:
    with pytest.raises(RuntimeError) as caught:
        start_server(
            tmp_path,
            {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "1", "VOXHELM_FASTERWHISPER_MODEL": "small"},
        )
    assert "refusing to start: the default model is missing." in str(caught.value)
    assert "offline mode is on (HF_HUB_OFFLINE)" in str(caught.value)


def test_auto_pull_makes_the_request_wait_and_shows_in_logs_and_metrics(
    serve: Any, hub: Hub, speech: Speech
) -> None:
    server = serve(VOXHELM_MODEL_AUTO_PULL="true", VOXHELM_HUGGINGFACE_TOKEN="hf_voxhelm_test")
    response = transcribe(server, speech, "small")
    assert response.status_code == 200, response.text
    # The request's pull sends the Hub token as the CLI, the console and the start-up do
    # (huggingface_hub's own daily agent-list fetch goes without one).
    pulled = [r for r in hub.requests if r.path != "/api/agent-harnesses"]
    assert len(pulled) == 5  # the model info and four files
    assert [r.path for r in pulled if r.authorization != "Bearer hf_voxhelm_test"] == []
    assert word_error_rate(speech.text, response.json()["text"]) <= 0.10
    assert "model small is not installed; pulling it (VOXHELM_MODEL_AUTO_PULL)" in server.log()
    assert "pulling small: 100%" in server.log()
    metrics = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ).text
    assert 'voxhelm_model_pulls_total{kind="fasterwhisper",outcome="installed"} 1.0' in metrics
    assert len(hub.file_requests("model.bin")) == 1
    # A repository id is for operators: a request naming one pulls nothing.
    seen = len(hub.requests)
    refused = transcribe(server, speech, "Systran/faster-whisper-tiny.en")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "model_not_installed"
    assert "Requests pull only the catalogue's models" in refused.json()["error"]["message"]
    assert len(hub.requests) == seen


def test_removing_a_model_lets_the_running_request_finish_and_refuses_the_next(
    serve: Any, cli: Cli, speech: Speech
) -> None:
    assert cli.run("pull", "small").returncode == 0
    server = serve()
    recording = long_recording()
    answers: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: answers.append(transcribe(server, recording, "small"))
    )
    request.start()

    def busy() -> bool:
        with server.client() as client:
            models = client.get("/v1/health").json()["models"]
        return any(m["model"] == "small" and m["idle_seconds"] == 0 for m in models)

    deadline = time.monotonic() + 60
    while not busy():
        assert time.monotonic() < deadline, "the transcription never started"
        time.sleep(0.05)
    removed = cli.run("rm", "small")
    assert removed.returncode == 0, removed.stderr
    request.join(timeout=300)

    assert answers[0].status_code == 200, answers[0].text
    assert word_error_rate(recording.text, answers[0].json()["text"]) <= 0.15
    refused = transcribe(server, speech, "small")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "model_not_installed"
    assert "small" not in [m.id for m in client_for(server).models.list()]


def test_a_pulled_whisper_cpp_file_transcribes_and_is_listed(
    serve: Any, cli: Cli, speech: Speech
) -> None:
    assert cli.run("pull", "ggml-tiny.en.bin").returncode == 0
    server = serve(VOXHELM_WHISPERCPP_BIN=str(WHISPER_CPP))
    listed = {m.id: m.model_extra["voxhelm"] for m in client_for(server).models.list()}
    assert listed["ggml-tiny.en.bin"]["backend"] == "whispercpp"
    assert listed["ggml-tiny.en.bin"]["installed"] is True
    response = transcribe(server, speech, "ggml-tiny.en.bin")
    assert response.status_code == 200, response.text
    assert response.headers["X-Voxhelm-Backend"] == "whispercpp"
    assert word_error_rate(speech.text, response.json()["text"]) <= 0.15
    info = cli.run("info", "ggml-tiny.en.bin").stdout
    assert "last_used: 20" in info  # an ISO date: the transcription was recorded

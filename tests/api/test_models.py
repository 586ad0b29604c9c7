"""GET /v1/models and /v1/models/<id>: OpenAI's model list, with Voxhelm's details per model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from tests.conftest import PRODUCER_TOKEN, WORKER_TOKEN, ServerProcess
from voxhelm.config import Config, is_apple_silicon
from voxhelm.modelstore.listing import entries
from voxhelm.stt.registry import ENGINES

MLX_MODEL = "mlx-community/whisper-large-v3-mlx"


@pytest.fixture(autouse=True)
def fresh_engines() -> Iterator[None]:
    ENGINES.reset()
    yield
    ENGINES.reset()


@pytest.fixture(scope="module")
def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


def details(model: Any) -> dict[str, Any]:
    return dict(model.model_extra["voxhelm"])


TINY_BYTES = 78_090_594  # the bundled tiny.en files


@pytest.mark.slow
def test_the_openai_client_lists_only_models_that_can_serve(oai: openai.OpenAI) -> None:
    models = {m.id: m for m in oai.models.list()}
    # Not ggml-large-v3.bin (not installed, no whisper.cpp here) nor the mlx model.
    assert set(models) == {
        "auto",
        "whisper-1",
        "gpt-4o-mini-transcribe",
        "gpt-4o-transcribe",
        "gpt-4o-transcribe-diarize",  # the session server diarizes (onnx)
        "tiny.en",
        "base",  # the multilingual extra, which the dev group installs
    }
    assert all(m.object == "model" and m.owned_by == "voxhelm" for m in models.values())
    assert all(m.created == 0 for m in models.values())
    assert details(models["whisper-1"]) == {
        "backend": "fasterwhisper",
        "alias_of": "tiny.en",
        "available": True,
        "installed": True,
        "size_bytes": TINY_BYTES,
        "languages": ["en"],
        "reason": None,
    }
    assert details(models["tiny.en"])["alias_of"] is None
    assert details(models["gpt-4o-transcribe-diarize"])["alias_of"] == "tiny.en"
    base = details(models["base"])
    assert (base["available"], base["installed"], base["reason"]) == (True, True, None)
    assert base["size_bytes"] > 140_000_000
    assert len(base["languages"]) == 99
    assert base["languages"][:3] == ["en", "zh", "de"]


@pytest.mark.slow
def test_all_adds_the_models_that_cannot_serve_with_the_reason(oai: openai.OpenAI) -> None:
    models = {m.id: details(m) for m in oai.models.list(extra_query={"all": "true"})}
    assert models["ggml-large-v3.bin"]["available"] is False
    assert models["ggml-large-v3.bin"]["installed"] is False
    assert models["ggml-large-v3.bin"]["reason"] == (
        "not installed: voxhelm models pull ggml-large-v3.bin"
    )
    assert models["small"] == {
        "backend": "fasterwhisper",
        "alias_of": None,
        "available": False,
        "installed": False,
        "size_bytes": 486_000_000,
        "languages": [],
        "reason": "not installed: voxhelm models pull small",
    }
    assert models["medium.en"]["languages"] == ["en"]
    assert models[MLX_MODEL]["backend"] == "mlx"
    assert models[MLX_MODEL]["available"] is is_apple_silicon()
    if not is_apple_silicon():
        assert models[MLX_MODEL]["reason"] == "the mlx engine cannot run on this server"
    assert models["whisper-1"]["available"] is True
    assert "en_US-joe-medium" not in models  # voices are not transcription models


@pytest.mark.slow
def test_the_openai_client_retrieves_one_model(oai: openai.OpenAI) -> None:
    model = oai.models.retrieve("whisper-1")
    assert (model.id, model.object, model.owned_by) == ("whisper-1", "model", "voxhelm")
    assert details(model)["alias_of"] == "tiny.en"
    # Hugging Face repo ids hold a slash; the client sends it as %2F.
    assert oai.models.retrieve(MLX_MODEL).id == MLX_MODEL
    assert details(oai.models.retrieve("large-v3"))["reason"] == (
        "not installed: voxhelm models pull large-v3"
    )


@pytest.mark.slow
def test_an_unknown_model_is_not_found(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.models.retrieve("davinci")
    assert caught.value.body == {
        "message": "The model 'davinci' does not exist.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


@pytest.mark.slow
def test_a_bad_all_flag_is_a_400(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.models.list(extra_query={"all": "maybe"})
    assert caught.value.body == {
        "message": "all must be true or false.",
        "type": "invalid_request_error",
        "param": "all",
        "code": "invalid_value",
    }


# -- in process, with other configurations ----------------------------------------------------


def test_whisperkit_names_are_listed_only_when_enabled(
    configure: Callable[..., Config], client: Any, auth_headers: dict[str, str]
) -> None:
    ids = [m["id"] for m in client.get("/v1/models", headers=auth_headers).json()["data"]]
    assert "whisperkit" not in ids
    assert ids == sorted(ids)

    configure(VOXHELM_WHISPERKIT_ENABLED="true", VOXHELM_STT_BACKEND="whisperkit")
    body = client.get("/v1/models", headers=auth_headers).json()
    assert body["object"] == "list"
    models = {m["id"]: m["voxhelm"] for m in body["data"]}
    assert models["whisperkit"] == {
        "backend": "whisperkit",
        "alias_of": "large-v3-v20240930",
        "available": True,
        "installed": True,  # a sidecar's model: installed where it runs
        "size_bytes": None,
        "languages": [],
        "reason": None,
    }
    assert models["large-v3-v20240930"]["alias_of"] is None
    assert models["whisper-1"]["backend"] == "whisperkit"
    assert models["tiny.en"]["available"] is True


def test_an_engine_that_cannot_run_is_listed_as_unavailable(
    configure: Callable[..., Config], client: Any, auth_headers: dict[str, str]
) -> None:
    configure(VOXHELM_STT_BACKEND="whisperkit")  # selected, but not enabled
    body = client.get("/v1/models/whisper-1", headers=auth_headers).json()
    assert body["voxhelm"] == {
        "backend": "whisperkit",
        "alias_of": "large-v3-v20240930",
        "available": False,
        "installed": False,
        "size_bytes": None,
        "languages": [],
        "reason": "the whisperkit engine cannot run on this server",
    }
    listed = client.get("/v1/models", headers=auth_headers).json()["data"]
    assert "whisper-1" not in [m["id"] for m in listed]


def test_a_reason_never_shows_a_path_of_the_server(
    configure: Callable[..., Config], client: Any, auth_headers: dict[str, str]
) -> None:
    """An installed whisper.cpp file whose program is missing: operators (CLI, console) see
    the configured program's path, API clients only that the program is missing."""
    binary = "/opt/voxhelm-private/bin/whisper-cli"
    config = configure(VOXHELM_WHISPERCPP_BIN=binary)
    config.stt.model_cache_dir.mkdir(parents=True, exist_ok=True)
    (config.stt.model_cache_dir / "ggml-tiny.en.bin").write_bytes(b"ggml")
    assert "ggml-tiny.en.bin" not in {e.name for e in entries(config)}  # it cannot serve
    detailed = {e.name: e for e in entries(config, include_all=True)}["ggml-tiny.en.bin"]
    assert detailed.reason == f"the whisper.cpp program ({binary}) is not installed"
    for path in ("/v1/models?all=true", "/v1/models/ggml-tiny.en.bin"):
        response = client.get(path, headers=auth_headers)
        assert response.status_code == 200
        assert "/opt/" not in response.content.decode()
        assert "voxhelm-private" not in response.content.decode()
    body = client.get("/v1/models/ggml-tiny.en.bin", headers=auth_headers).json()
    assert body["voxhelm"]["available"] is False
    assert body["voxhelm"]["reason"] == "the whisper.cpp program is not installed"


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), ("nope", 401), (WORKER_TOKEN, 401), (PRODUCER_TOKEN, 200)]
)
def test_it_needs_a_producer_token(
    configure: Callable[..., Config], client: Any, token: str | None, status: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert client.get("/v1/models", headers=headers).status_code == status
    assert client.get("/v1/models/whisper-1", headers=headers).status_code == status


def test_it_answers_only_get(
    configure: Callable[..., Config], client: Any, auth_headers: dict[str, str]
) -> None:
    response = client.post("/v1/models", headers=auth_headers)
    assert response.status_code == 405
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_the_openapi_document_describes_both_operations(client: Any) -> None:
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert set(paths["/v1/models"]) == {"get"}
    retrieve = paths["/v1/models/{model}"]["get"]
    assert retrieve["parameters"][0]["name"] == "model"
    assert {"200", "401", "404"} <= set(retrieve["responses"])

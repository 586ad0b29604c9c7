"""What anyone may read without a token: GET /v1/health/live (liveness for probes, telling
nothing else, and the container's health check that uses it, run as a real process against
real servers) and the OpenAPI document (the same for every installation)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ServerProcess, process_env, start_server
from voxhelm import __version__

pytestmark = pytest.mark.slow

HEALTHCHECK = Path(__file__).parents[2] / "deploy" / "container" / "healthcheck.py"


def run_healthcheck(server: ServerProcess, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The container's check, with no token anywhere in its environment or var dir."""
    env = process_env(tmp_path / "probe", {"VOXHELM_HEALTHCHECK_PORT": str(port_of(server))})
    for name in ("VOXHELM_BEARER_TOKENS", "VOXHELM_WORKER_TOKENS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def port_of(server: ServerProcess) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose default model cannot load, behind a TLS proxy (HTTPS only)."""
    root = tmp_path_factory.mktemp("broken")
    server = start_server(
        root,
        {
            "VOXHELM_FASTERWHISPER_MODEL": str(root / "no-such-model"),
            "VOXHELM_HTTPS_ONLY": "true",
        },
    )
    yield server
    server.stop()


def test_it_answers_anyone_with_one_word(server: ServerProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = httpx.get(f"{server.url}/v1/health/live", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"status": "ok"}
        # Nothing that names the build or the models, in the body or a header.
        answer = response.text + str(response.headers)
        assert __version__ not in answer
        assert "tiny" not in answer and "whisper" not in answer.lower()
        assert "server" not in response.headers


def test_it_takes_no_body_and_only_get(server: ServerProcess) -> None:
    response = httpx.post(f"{server.url}/v1/health/live", json={"x": 1})
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["allow"] == "GET"


def test_the_detailed_health_still_needs_a_token(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/v1/health").status_code == 401


def test_the_openapi_document_lists_it_as_public(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.url}/v1/openapi.json").json()
    live = doc["paths"]["/v1/health/live"]["get"]
    assert live["security"] == []
    assert set(live["responses"]) == {"200", "503"}
    schema = doc["components"]["schemas"]["LivenessResponse"]
    assert set(schema["properties"]) == {"status"}


def test_the_public_document_names_nothing_of_the_installation(
    server: ServerProcess, configure: Callable[..., Any], client: Any
) -> None:
    # Another configuration (model, limits, tokens), in this process: the same document.
    configure(
        VOXHELM_FASTERWHISPER_MODEL="small",
        VOXHELM_MAX_UPLOAD_BYTES="1000",
        VOXHELM_BEARER_TOKENS="elsewhere=another-token-0123456789",
    )
    here = client.get("/v1/openapi.json")
    assert here.status_code == 200
    assert here.json() == httpx.get(f"{server.url}/v1/openapi.json").json()


def test_the_container_check_passes_without_a_token(server: ServerProcess, tmp_path: Path) -> None:
    result = run_healthcheck(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "healthy\n"


def test_an_engine_that_cannot_load_is_a_503_even_over_plain_http(
    broken: ServerProcess, tmp_path: Path
) -> None:
    # HTTPS only: every other plain-HTTP request is redirected, the probe is not.
    redirected = httpx.get(f"{broken.url}/v1/models")
    assert redirected.status_code == 301
    response = httpx.get(f"{broken.url}/v1/health/live")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}
    assert "no-such-model" not in response.text
    result = run_healthcheck(broken, tmp_path)
    assert result.returncode == 1
    assert "/v1/health/live answered 503 'degraded'" in result.stderr

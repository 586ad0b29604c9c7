"""GET /v1/health: status, version and the default engine's readiness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voxhelm import __version__
from voxhelm.stt.registry import ENGINES


@pytest.fixture(autouse=True)
def fresh_engines() -> Any:
    ENGINES.reset()
    yield
    ENGINES.reset()


def test_it_reports_version_and_engine(configure: Any, client: Any, auth_headers: Any) -> None:
    response = client.get("/v1/health", headers=auth_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["stt"]["backend"] == "fasterwhisper"
    assert body["stt"]["model"] == "tiny.en"
    assert body["stt"]["state"] in ("not_loaded", "ready")


def test_it_reports_an_unavailable_engine_with_its_reason(
    configure: Any, client: Any, auth_headers: Any, tmp_path: Path
) -> None:
    configure(VOXHELM_FASTERWHISPER_MODEL=str(tmp_path / "missing-model"))
    body = client.get("/v1/health", headers=auth_headers).json()
    assert body["status"] == "degraded"
    assert body["stt"]["state"] == "unavailable"
    assert "does not exist" in body["stt"]["reason"]
    assert body["stt"]["model"] == "missing-model"

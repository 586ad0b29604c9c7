"""The OpenAPI document describes the registered endpoints."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("configure")


def test_it_serves_an_openapi_3_document(client: Any) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/health" in doc["paths"]
    assert "/v1/audio/transcriptions" in doc["paths"]
    health = doc["paths"]["/v1/health"]["get"]
    ref = health["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/HealthResponse"
    assert "ErrorEnvelope" in doc["components"]["schemas"]
    post = doc["paths"]["/v1/audio/transcriptions"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"400", "401", "413", "429"} <= set(post["responses"])

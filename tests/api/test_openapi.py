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


def test_it_describes_streaming_translations_and_hotwords(client: Any) -> None:
    doc = client.get("/v1/openapi.json").json()
    transcriptions = doc["paths"]["/v1/audio/transcriptions"]["post"]
    events = transcriptions["responses"]["200"]["content"]["text/event-stream"]["schema"]
    kinds = {option["properties"]["type"]["const"] for option in events["oneOf"]}
    assert kinds == {"transcript.text.delta", "transcript.text.done"}
    form = transcriptions["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"stream", "hotwords"} <= set(form["properties"])
    translations = doc["paths"]["/v1/audio/translations"]["post"]
    form = translations["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "model", "prompt", "response_format", "temperature"} <= set(form["properties"])
    assert "language" not in form["properties"]
    assert {"400", "401", "413", "429", "503"} <= set(translations["responses"])
    health = doc["components"]["schemas"]["HealthResponse"]
    assert "models" in health["properties"]

"""The OpenAPI document describes the registered endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.media import speech_in
from tests.speech import passage

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
    assert kinds == {"transcript.text.delta", "transcript.text.segment", "transcript.text.done"}
    form = transcriptions["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"stream", "hotwords"} <= set(form["properties"])
    assert {"chunking_strategy", "known_speaker_names", "known_speaker_references"} <= set(
        form["properties"]
    )
    bodies = transcriptions["responses"]["200"]["content"]["application/json"]["schema"]
    assert "TranscriptionDiarized" in {option.get("title") for option in bodies["oneOf"]}
    translations = doc["paths"]["/v1/audio/translations"]["post"]
    form = translations["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "model", "prompt", "response_format", "temperature"} <= set(form["properties"])
    assert "language" not in form["properties"]
    assert {"400", "401", "413", "429", "503"} <= set(translations["responses"])
    health = doc["components"]["schemas"]["HealthResponse"]
    assert "models" in health["properties"]


def test_it_is_a_valid_openapi_3_1_document(client: Any) -> None:
    doc = client.get("/v1/openapi.json").json()
    OpenAPIV31SpecValidator(doc).validate()  # raises on the first error, a dangling $ref too


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_ref_points_into_components(client: Any) -> None:
    doc = client.get("/v1/openapi.json").json()
    found = set(refs(doc))
    names = {ref.removeprefix("#/components/schemas/") for ref in found}
    assert {"TranscriptionSegmentOut", "TranscriptionWordOut", "TranscriptLanguage"} <= names
    assert names <= set(doc["components"]["schemas"])
    assert all(ref.startswith("#/components/schemas/") for ref in found)
    assert "$defs" not in json.dumps(doc)


@pytest.fixture(scope="module")
def speech_wav() -> bytes:
    return speech_in("wav", passage())


def transcribe(server: ServerProcess, wav: bytes, **fields: str) -> httpx.Response:
    response = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"},
        data={"model": "whisper-1", **fields},
        files={"file": ("speech.wav", wav)},
        timeout=120,
    )
    response.request.read()  # schemathesis reads the request too
    assert response.status_code == 200, response.text
    return response


# The fuzzer sends no speech, so it never sees a transcript: these check real ones.
@pytest.mark.slow
@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": "json"},
        {"response_format": "verbose_json", "timestamp_granularities[]": "word"},
        {"response_format": "diarized_json"},
    ],
)
def test_a_real_transcript_matches_the_document(
    server: ServerProcess, speech_wav: bytes, fields: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json")
    response = transcribe(server, speech_wav, **fields)
    assert schema["/v1/audio/transcriptions"]["POST"].validate_response(response) is None


@pytest.mark.slow
@pytest.mark.parametrize("response_format", ["json", "diarized_json"])
def test_real_streamed_events_match_the_document(
    server: ServerProcess, speech_wav: bytes, response_format: str
) -> None:
    doc = httpx.get(f"{server.url}/v1/openapi.json").json()
    pointer = "/paths/~1v1~1audio~1transcriptions/post/responses/200/content/text~1event-stream"
    # The document as the root, so the events' schema resolves its references into it.
    validator = OAS31Validator({**doc, "$ref": f"#{pointer}/schema"})
    answer = transcribe(server, speech_wav, stream="true", response_format=response_format)
    lines = answer.text.splitlines()
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert [event["type"] for event in events][-1] == "transcript.text.done"
    for event in events:
        validator.validate(event)
    with pytest.raises(ValidationError):
        validator.validate({"type": "transcript.text.done", "text": 3})

"""The limits on worker-supplied fields, checked on the protocol models (no server needed).

The HTTP side (a 400 and nothing stored) is in ``test_claim.py`` and ``test_completion.py``
and, against the real server, ``tests/hardening/test_hostile_input.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from voxhelm.worker_protocol.limits import MAX_RESULT_TEXT_CHARS
from voxhelm.worker_protocol.messages import (
    ClaimRequest,
    CompleteRequest,
    FailRequest,
    JobHeartbeat,
    ManifestArtifact,
    WorkerHeartbeat,
)

LEASE = {"lease_token": "t" * 43}


def artifact(**changes: Any) -> dict[str, Any]:
    entry = {
        "name": "source.wav",
        "kind": "source",
        "format": "",
        "storage_backend": "filesystem",
        "storage_key": "jobs/x/attempt-1/source.wav",
        "content_type": "audio/wav",
        "size_bytes": 1,
        "sha256": "0" * 64,
        "exposed": False,
    }
    return {**entry, **changes}


def refusal(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return str(caught.value.errors()[0]["msg"])


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (WorkerHeartbeat, {"worker_id": "w" * 65}, "worker_id must be at most 64 characters."),
        (ClaimRequest, {"capabilities": {}, "max_jobs": 1025}, "max_jobs must be at most 1024."),
        (JobHeartbeat, {"lease_token": "t" * 129}, "lease_token must be at most 128 characters."),
        (
            JobHeartbeat,
            {"lease_token": "t\x00"},
            "lease_token must not contain control characters.",
        ),
        (
            CompleteRequest,
            {**LEASE, "result_text": "", "artifacts": [artifact()] * 33},
            "artifacts must have at most 32 entries.",
        ),
        (
            CompleteRequest,
            {**LEASE, "result_text": "x" * (MAX_RESULT_TEXT_CHARS + 1), "artifacts": [artifact()]},
            f"result_text must be at most {MAX_RESULT_TEXT_CHARS} characters.",
        ),
        (
            ManifestArtifact,
            artifact(name="n" * 256),
            "Artifact name must be at most 255 characters.",
        ),
        (
            ManifestArtifact,
            artifact(storage_key="k" * 1025),
            "Artifact storage_key must be at most 1024 characters.",
        ),
        (
            ManifestArtifact,
            artifact(format="f" * 33),
            "Artifact format must be at most 32 characters.",
        ),
        (
            ManifestArtifact,
            artifact(name="source\u2028.wav"),
            "Artifact name must not contain control characters.",
        ),
        (
            FailRequest,
            {**LEASE, "retryable": True, "error_detail": "x" * 2001},
            "error_detail must be at most 2000 characters.",
        ),
    ],
)
def test_a_field_over_its_limit_is_refused_by_name(
    model: type[BaseModel], data: dict[str, Any], message: str
) -> None:
    assert refusal(model, data) == message


def test_free_text_may_hold_any_character_within_its_limit() -> None:
    detail = " disk full\n\x1b[31m\u2028" + "x" * 1980 + " "
    failure = FailRequest.model_validate({**LEASE, "retryable": False, "error_detail": detail})
    assert failure.error_detail == detail.strip()
    beat = JobHeartbeat.model_validate({**LEASE, "progress": {"message": "a\nb" * 166}})
    assert beat.progress.message == "a\nb" * 166


def test_wrong_types_are_still_dropped_as_the_reference_did() -> None:
    claim = ClaimRequest.model_validate({"capabilities": {"models": ["tiny", 5, None, " "]}})
    assert claim.capabilities.models == ["tiny"]
    failure = FailRequest.model_validate(
        {**LEASE, "retryable": True, "error_detail": "x", "error_code": "not an identifier"}
    )
    assert failure.error_code is None

"""POST /v1/jobs with ``diarization``: the reference's messages, the stored form, dedup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.jobs.conftest import JobsApi, job_body
from tests.jobs.test_submit import error_of
from voxhelm.batch.request import DiarizationRequest
from voxhelm.config import Config
from voxhelm.jobs.models import Job

REF_URL = "https://media.example.com/alice.wav"


def known(**fields: Any) -> dict[str, Any]:
    speakers = [
        {
            "id": "a",
            "name": "Alice",
            "references": [{"kind": "clip_artifact", "audio": {"kind": "url", "url": REF_URL}}],
        }
    ]
    return {
        "enabled": True,
        "strategy": "pyannote_known_speaker",
        "known_speakers": speakers,
        **fields,
    }


def speaker(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "a",
        "name": "Alice",
        "references": [{"kind": "clip_artifact", "audio": {"kind": "url", "url": REF_URL}}],
    }
    entry.update(fields)
    return entry


@pytest.mark.parametrize(
    ("diarization", "message"),
    [
        ("true", "diarization must be an object."),
        (1, "diarization must be an object."),
        ({}, "diarization.enabled must be provided when diarization is set."),
        ({"enabled": "true"}, "diarization.enabled must be a boolean."),
        ({"enabled": None}, "diarization.enabled must be a boolean."),
        ({"enabled": True, "speakers": 2}, "Unsupported diarization option: speakers."),
        (
            {"enabled": False, "num_speakers": 2},
            "diarization options require diarization.enabled=true.",
        ),
        (
            {"enabled": True, "num_speakers": 0},
            "diarization.num_speakers must be a positive integer.",
        ),
        (
            {"enabled": True, "min_speakers": True},
            "diarization.min_speakers must be a positive integer.",
        ),
        (
            {"enabled": True, "max_speakers": 2.0},
            "diarization.max_speakers must be a positive integer.",
        ),
        (
            {"enabled": True, "num_speakers": 2, "max_speakers": 3},
            "diarization.num_speakers cannot be combined with min_speakers or max_speakers.",
        ),
        (
            {"enabled": True, "min_speakers": 3, "max_speakers": 2},
            "diarization.min_speakers must be less than or equal to diarization.max_speakers.",
        ),
        ({"enabled": True, "strategy": 1}, "diarization.strategy must be a string."),
        (
            {"enabled": True, "strategy": "magic"},
            "Unsupported diarization.strategy. Accepted values: pyannote, pyannote_known_speaker.",
        ),
        (
            {"enabled": True, "known_speakers": [speaker()]},
            "diarization.known_speakers require strategy=pyannote_known_speaker.",
        ),
        (
            {"enabled": True, "known_speaker": {}},
            "diarization.known_speaker require strategy=pyannote_known_speaker.",
        ),
        (known(known_speakers=[]), "diarization.known_speakers must be a non-empty list."),
        (
            known(known_speakers=[speaker(), speaker(name="Other")]),
            "Duplicate diarization.known_speakers id 'a'.",
        ),
        (
            known(known_speakers=[speaker(name=" ")]),
            "diarization.known_speakers[].name must be a non-empty string.",
        ),
        (
            known(known_speakers=[speaker(references=[])]),
            "diarization.known_speakers[].references must be a non-empty list.",
        ),
        (
            known(
                known_speakers=[
                    speaker(
                        references=[
                            {
                                "kind": "source_range",
                                "audio": {"kind": "url", "url": REF_URL},
                                "start": 5,
                                "end": 2,
                            }
                        ]
                    )
                ]
            ),
            "A source_range reference needs start before end.",
        ),
        (
            known(
                known_speakers=[
                    speaker(
                        references=[
                            {
                                "kind": "source_range",
                                "audio": {"kind": "url", "url": REF_URL},
                                "start": True,
                                "end": 2,
                            }
                        ]
                    )
                ]
            ),
            "A source_range reference needs non-negative numbers start and end.",
        ),
        (
            known(
                known_speakers=[
                    speaker(references=[{"kind": "clip_artifact", "audio": {"kind": "file"}}])
                ]
            ),
            "reference audio.kind must be 'url' or 'upload'.",
        ),
        (
            known(
                known_speakers=[
                    speaker(
                        references=[
                            {
                                "kind": "clip_artifact",
                                "audio": {"kind": "upload", "upload_id": "not-a-uuid"},
                            }
                        ]
                    )
                ]
            ),
            "A known-speaker reference audio.upload_id must be a UUID string.",
        ),
        (
            known(known_speaker={"colour": 1}),
            "Unsupported diarization.known_speaker option: colour.",
        ),
        (
            known(known_speaker={"auto_accept_margin": -0.1}),
            "diarization.known_speaker.auto_accept_margin must be a non-negative number.",
        ),
        (
            known(known_speaker={"embedding_model": "pyannote/wespeaker-voxceleb-resnet34-LM"}),
            "Unsupported diarization.known_speaker.embedding_model "
            "'pyannote/wespeaker-voxceleb-resnet34-LM'. Accepted values: campplus.",
        ),
        (
            known(
                known_speakers=[
                    speaker(
                        references=[
                            {
                                "kind": "clip_artifact",
                                "audio": {"kind": "url", "url": "https://evil.example/a.wav"},
                            }
                        ]
                    )
                ]
            ),
            "Known-speaker reference audio: URL host is not in the configured allowlist.",
        ),
    ],
)
def test_it_refuses_malformed_diarization_with_the_reference_messages(
    api: JobsApi, diarization: Any, message: str
) -> None:
    error = error_of(api.submit(job_body(diarization=diarization)))
    assert error["message"] == message
    assert error["param"] == "diarization"
    assert Job.objects.count() == 0


def test_it_stores_the_normalized_anonymous_request(api: JobsApi) -> None:
    response = api.submit(
        job_body(diarization={"enabled": True, "strategy": "pyannote", "min_speakers": 2})
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.output_data["diarization"] == {"enabled": True, "min_speakers": 2}


def test_it_stores_the_normalized_known_speaker_request(api: JobsApi) -> None:
    ranged = {
        "kind": "source_range",
        "audio": {"kind": "url", "url": f" {REF_URL} "},
        "start": 1,
        "end": 4.5,
    }
    body = known(
        num_speakers=2,
        known_speakers=[speaker(id=" a ", name=" Alice ", references=[ranged])],
        known_speaker={"min_top_similarity": 0.5, "embedding_model": "campplus"},
    )
    response = api.submit(job_body(diarization=body))
    assert response.status_code == 201, response.content
    stored = Job.objects.get(pk=response.json()["id"]).output_data["diarization"]
    assert stored == {
        "enabled": True,
        "num_speakers": 2,
        "strategy": "pyannote_known_speaker",
        "known_speakers": [
            {
                "id": "a",
                "name": "Alice",
                "references": [
                    {
                        "kind": "source_range",
                        "audio": {"kind": "url", "url": REF_URL},
                        "start": 1.0,
                        "end": 4.5,
                    }
                ],
            }
        ],
        "known_speaker": {"embedding_model": "campplus", "min_top_similarity": 0.5},
    }
    from django.db import connection

    # PostgreSQL's jsonb keeps no key order (it sorts keys); SQLite's JSON text does.
    if connection.vendor != "postgresql":
        assert list(stored) == [
            "enabled",
            "num_speakers",
            "strategy",
            "known_speakers",
            "known_speaker",
        ]
    shown = DiarizationRequest.from_stored(stored).public()
    assert shown["known_speakers"] == [{"id": "a", "name": "Alice", "reference_count": 1}]
    assert "http" not in str(shown)


def test_backend_none_refuses_a_diarization_request(
    api: JobsApi, configure: Callable[..., Config]
) -> None:
    configure(
        VOXHELM_ALLOWED_URL_HOSTS="media.example.com",
        VOXHELM_DIARIZATION_BACKEND="none",
    )
    error = error_of(api.submit(job_body(diarization={"enabled": True})))
    assert error["message"] == (
        "Diarization was requested, but no diarization backend is configured. "
        "Submit the job without diarization."
    )
    assert api.submit(job_body(diarization={"enabled": False})).status_code == 201


def test_task_ref_reuse_compares_the_whole_diarization_request(api: JobsApi) -> None:
    first = api.submit(job_body(task_ref="ep-1", diarization={"enabled": True}))
    assert first.status_code == 201
    again = api.submit(
        job_body(task_ref="ep-1", diarization={"enabled": True, "strategy": "pyannote"})
    )
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    hinted = api.submit(job_body(task_ref="ep-1", diarization={"enabled": True, "num_speakers": 2}))
    assert hinted.status_code == 201
    named = api.submit(job_body(task_ref="ep-1", diarization=known()))
    assert named.status_code == 201
    assert len({first.json()["id"], hinted.json()["id"], named.json()["id"]}) == 3

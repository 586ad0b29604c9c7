"""Fixtures for search: producers' jobs that succeed with a transcript whose text is chosen.

A job is submitted through the API and ends through the pipeline's own ``finish``, which
marks it succeeded and announces the transcript, as after a real transcription; only the
transcription is left out, because ranking and escaping need texts chosen word for word
(the console's browser test searches speech the real model transcribed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from django.test import Client

from tests.conftest import OTHER_PRODUCER_TOKEN, PRODUCER_TOKEN
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.jobs.models import Job
from voxhelm.jobs.pipeline import finish

Segment = tuple[float, str] | tuple[float, str, str]
"""(start, text) or (start, text, speaker); each segment lasts until the next one starts."""


def transcript_json(segments: Sequence[Segment]) -> bytes:
    items = []
    for index, segment in enumerate(segments):
        start, text = segment[0], segment[1]
        end = segments[index + 1][0] if index + 1 < len(segments) else start + 4.0
        item: dict[str, Any] = {"id": index, "seek": 0, "start": start, "end": end}
        item["text"] = f" {text}"
        if len(segment) > 2:
            item["speaker"] = segment[2]
        items.append(item)
    text = " ".join(segment[1] for segment in segments)
    return json.dumps(
        {"task": "transcribe", "language": "en", "text": text, "segments": items}
    ).encode()


def store_transcript(job: Job, segments: Sequence[Segment], config: Config) -> None:
    JobArtifact.objects.put(
        job,
        "transcript.json",
        kind="transcript_json",
        format="json",
        content_type="application/json",
        exposed=True,
        data=transcript_json(segments),
        config=config.artifacts,
    )


@pytest.fixture
def search_config(configure: Callable[..., Config]) -> Config:
    return configure(VOXHELM_ALLOWED_URL_HOSTS="media.example.com")


@pytest.fixture
def transcribed(
    client: Client, search_config: Config, transactional_db: None
) -> Callable[..., str]:
    """``transcribed(segments, token=..., name=...)``: a succeeded job's id."""

    def make(
        segments: Sequence[Segment], token: str = PRODUCER_TOKEN, name: str = "episode.mp3"
    ) -> str:
        body = {
            "job_type": "transcribe",
            "input": {"kind": "url", "url": f"https://media.example.com/{name}"},
        }
        answer = client.post(
            "/v1/jobs", body, content_type="application/json", headers=_auth(token)
        )
        assert answer.status_code == 201, answer.content
        job = Job.objects.get(pk=answer.json()["id"])
        assert job.mark_running("test-worker")

        def steps() -> tuple[str, dict[str, Any]]:
            store_transcript(job, segments, search_config)
            return " ".join(s[1] for s in segments), {"processing_seconds": 0.1}

        assert finish(job, steps)
        return str(job.pk)

    return make


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
def searcher(client: Client) -> Callable[..., Any]:
    """``searcher(query_string, token=...)``: the response of ``GET /v1/search?...``."""

    def get(query: str, token: str | None = PRODUCER_TOKEN) -> Any:
        return client.get(f"/v1/search?{query}", headers=_auth(token))

    return get


__all__ = ["OTHER_PRODUCER_TOKEN", "store_transcript"]

"""Fixtures for the job API: a configuration with allowlisted media hosts and a client."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.conftest import OTHER_PRODUCER_TOKEN, PRODUCER_TOKEN
from voxhelm.config import Config

MEDIA_URL = "https://media.example.com/episode.mp3"
BASE_JOB: dict[str, Any] = {
    "job_type": "transcribe",
    "input": {"kind": "url", "url": MEDIA_URL},
}


def job_body(**fields: Any) -> dict[str, Any]:
    """A valid submission with ``fields`` replaced (None values are sent as JSON null)."""
    body = copy.deepcopy(BASE_JOB)
    body.update(fields)
    return body


@dataclass
class JobsApi:
    """The job endpoints through Django's test client, as a producer."""

    client: Client

    @staticmethod
    def _auth(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def submit(self, body: Any, token: str | None = PRODUCER_TOKEN, **kwargs: Any) -> Any:
        kwargs.setdefault("content_type", "application/json")
        return self.client.post("/v1/jobs", body, headers=self._auth(token), **kwargs)

    def get(self, job_id: Any, token: str | None = PRODUCER_TOKEN) -> Any:
        return self.client.get(f"/v1/jobs/{job_id}", headers=self._auth(token))

    def cancel(self, job_id: Any, token: str | None = PRODUCER_TOKEN) -> Any:
        return self.client.post(f"/v1/jobs/{job_id}/cancel", headers=self._auth(token))

    def artifact(self, job_id: Any, name: str, token: str | None = PRODUCER_TOKEN) -> Any:
        return self.client.get(f"/v1/jobs/{job_id}/artifacts/{name}", headers=self._auth(token))


@pytest.fixture
def jobs_config(configure: Callable[..., Config]) -> Config:
    return configure(
        VOXHELM_ALLOWED_URL_HOSTS="media.example.com,127.0.0.1:*",
        VOXHELM_TRUSTED_HTTP_HOSTS="127.0.0.1",
    )


@pytest.fixture
def api(client: Client, jobs_config: Config, transactional_db: None) -> JobsApi:
    # transactional_db: submissions run on their own thread and database connection, which
    # cannot see rows of a test wrapped in a transaction.
    return JobsApi(client)


@pytest.fixture
def other_token() -> str:
    return OTHER_PRODUCER_TOKEN

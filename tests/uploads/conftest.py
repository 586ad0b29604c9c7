"""Fixtures for staged uploads: a configuration per artifact store and a producer client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PRODUCER_TOKEN
from tests.media import speech_in
from tests.s3server import S3Server
from tests.speech import SENTENCES, synthesize
from voxhelm.config import Config

SENTENCE = SENTENCES[1]  # one the bundled tiny.en model hears reliably


@pytest.fixture(scope="session")
def speech_wav() -> bytes:
    return speech_in("wav", synthesize(SENTENCE))


@pytest.fixture(params=["filesystem", "s3"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The artifact store settings: the filesystem store, then a real S3 server."""
    if request.param == "filesystem":
        return {}
    s3: S3Server = request.getfixturevalue("s3_server")
    return s3.env(s3.new_bucket())


@pytest.fixture
def config(configure: Callable[..., Config], store_env: dict[str, str]) -> Config:
    return configure(**store_env)


@dataclass
class UploadsApi:
    client: Client

    @staticmethod
    def auth(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def stage(
        self,
        data: bytes,
        filename: str = "speech.wav",
        content_type: str = "audio/wav",
        token: str | None = PRODUCER_TOKEN,
    ) -> Any:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile(filename, data, content_type=content_type)
        return self.client.post("/v1/uploads", {"file": upload}, headers=self.auth(token))

    def submit(self, upload_id: str, token: str | None = PRODUCER_TOKEN, **fields: Any) -> Any:
        body = {"job_type": "transcribe", "input": {"kind": "upload", "upload_id": upload_id}}
        body.update(fields)
        return self.client.post(
            "/v1/jobs", body, content_type="application/json", headers=self.auth(token)
        )


@pytest.fixture
def api(client: Client, config: Config, transactional_db: None) -> UploadsApi:
    return UploadsApi(client)

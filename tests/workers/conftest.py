"""Fixtures for the remote worker protocol: a remote_pull configuration, a worker client
speaking to the app in-process, and a fake worker's artifact upload."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

from tests.jobs.conftest import JobsApi
from voxhelm.config import Config
from voxhelm.formats import ARTIFACT_FORMATS
from voxhelm.storage.stores import store_for_identity
from voxhelm.worker_protocol.capabilities import advertised

WORKER_TOKEN = "worker-token"
OTHER_WORKER_TOKEN = "worker-token-2"
REMOTE_ENV = {
    "VOXHELM_TRANSCRIPTION_EXECUTION_MODE": "remote_pull",
    "VOXHELM_WORKER_TOKENS": f"atlas={WORKER_TOKEN},boreas={OTHER_WORKER_TOKEN}",
    "VOXHELM_ALLOWED_URL_HOSTS": "media.example.com,127.0.0.1:*",
    "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
    "VOXHELM_REMOTE_WORKER_LEASE_SECONDS": "120",
    "VOXHELM_REMOTE_WORKER_POLL_SECONDS": "7",
}


@dataclass
class WorkerApi:
    """The ``/v1/internal/`` endpoints through Django's test client, as one worker."""

    client: Client
    token: str | None = WORKER_TOKEN
    capabilities: dict[str, Any] = field(default_factory=dict)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        kwargs.setdefault("content_type", "application/json")
        return self.client.post(path, body, headers=headers, **kwargs)

    def heartbeat(self, **body: Any) -> Any:
        return self.post("/v1/internal/workers/heartbeat", body)

    def claim(self, **body: Any) -> Any:
        body.setdefault("capabilities", self.capabilities)
        return self.post("/v1/internal/work/claim", body)

    def beat(self, job_id: Any, **body: Any) -> Any:
        return self.post(f"/v1/internal/work/{job_id}/heartbeat", body)

    def complete(self, job_id: Any, **body: Any) -> Any:
        return self.post(f"/v1/internal/work/{job_id}/complete", body)

    def fail(self, job_id: Any, **body: Any) -> Any:
        return self.post(f"/v1/internal/work/{job_id}/fail", body)


@pytest.fixture
def remote_config(configure: Callable[..., Config]) -> Config:
    return configure(**REMOTE_ENV)


@pytest.fixture
def jobs(client: Client, remote_config: Config, transactional_db: None) -> JobsApi:
    return JobsApi(client)


@pytest.fixture
def worker(client: Client, remote_config: Config, transactional_db: None) -> WorkerApi:
    return WorkerApi(client, capabilities=advertised(remote_config).model_dump())


@pytest.fixture
def other_worker(client: Client, remote_config: Config, transactional_db: None) -> WorkerApi:
    return WorkerApi(client, OTHER_WORKER_TOKEN, advertised(remote_config).model_dump())


def entry(
    job: dict[str, Any],
    name: str,
    data: bytes,
    kind: str,
    fmt: str,
    content_type: str,
    **extra: Any,
) -> dict[str, Any]:
    """A manifest entry for ``data`` stored as ``name`` under the claim's prefix."""
    return {
        "name": name,
        "kind": kind,
        "format": fmt,
        "storage_backend": job["artifact_store"]["backend"],
        "storage_key": f"{job['artifact_prefix']}{name}",
        "content_type": content_type,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "exposed": kind not in ("source", "extracted_audio"),
        **extra,
    }


def upload_results(
    config: Config, job: dict[str, Any], text: str = "Hello there.", store: bool = True
) -> list[dict[str, Any]]:
    """What a worker does before completing: write the source and every requested format
    under the attempt prefix of the claimed ``job``; returns the manifest."""
    objects = [("source.mp3", b"ID3 fake media bytes", "source", "", "audio/mpeg")]
    for key in job["output"]["formats"]:
        spec = ARTIFACT_FORMATS[key]
        objects.append((spec.name, f"{key}: {text}".encode(), spec.kind, key, spec.content_type))
    target = store_for_identity(job["artifact_store"], config.artifacts)
    manifest = []
    for name, data, kind, fmt, content_type in objects:
        item = entry(job, name, data, kind, fmt, content_type)
        if store:
            target.put_bytes(item["storage_key"], data, content_type)
        manifest.append(item)
    return manifest


def completion(
    job: dict[str, Any], manifest: list[dict[str, Any]], text: str = "Hello there.", **extra: Any
) -> dict[str, Any]:
    return {
        "lease_token": job["lease_token"],
        "result_text": text,
        "result_metadata": {
            "backend": "fasterwhisper",
            "model": "tiny.en",
            "language": "en",
            "duration_seconds": 1.25,
            "processing_seconds": 0.5,
        },
        "artifacts": manifest,
        **extra,
    }

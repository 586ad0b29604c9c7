"""The phases a worker reports in its lease heartbeats, over real HTTP to ``voxhelm web``.

Voxhelm's own worker reports the batch core's phases; the reference's worker names the same
steps its own way (``materialize_input``, ``transcribe``...). Both must reach the producer.
The heartbeats are sent as the reference worker sends them, with a plain HTTP client: its
program is not part of this project.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.s3server import S3Server
from tests.workers.cluster import Submitter, cluster_env, start_web, worker_token

pytestmark = pytest.mark.slow

# The reference worker's capabilities for the bundled model (docs/remote-workers.md).
CAPABILITIES = {
    "job_types": ["transcribe"],
    "backends": ["fasterwhisper"],
    "models": ["tiny.en"],
    "output_formats": ["text", "json", "vtt", "dote", "podlove"],
    "diarization": {"anonymous": False, "known_speaker": False, "embedding_models": []},
}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[ServerProcess]:
    # A long lease: the test's beats keep it, no sweep takes the job back meanwhile.
    env = cluster_env(s3_server, s3_server.new_bucket(), lease_seconds=300)
    server = start_web(tmp_path_factory.mktemp("phases-web"), env)
    yield server
    server.stop()


@pytest.fixture
def leased(web: ServerProcess) -> Iterator[tuple[httpx.Client, httpx.Client, dict[str, Any]]]:
    """A producer, a worker (``atlas``) and the job it has just claimed."""
    with web.client() as producer, web.client(worker_token("atlas")) as worker:
        Submitter(producer).url_job("http://127.0.0.1:9/speech.wav")  # never fetched here
        claim = worker.post(
            "/v1/internal/work/claim",
            json={"worker_id": "atlas", "max_jobs": 1, "capabilities": CAPABILITIES},
        )
        assert claim.status_code == 200, claim.text
        job = claim.json()["job"]
        yield producer, worker, job
        # The worker may hold one job at a time: the next test claims another.
        ended = worker.post(
            f"/v1/internal/work/{job['id']}/fail",
            json={"lease_token": job["lease_token"], "retryable": False, "error_detail": "done"},
        )
        assert ended.status_code == 200, ended.text


def beat(worker: httpx.Client, job: dict[str, Any], progress: dict[str, Any]) -> httpx.Response:
    return worker.post(
        f"/v1/internal/work/{job['id']}/heartbeat",
        json={"worker_id": "atlas", "lease_token": job["lease_token"], "progress": progress},
    )


def seen_by_producer(producer: httpx.Client, job: dict[str, Any]) -> Any:
    return producer.get(f"/v1/jobs/{job['id']}").json()["progress"]["phase"]


@pytest.mark.parametrize(
    ("reported", "shown"),
    [
        ("materialize_input", "downloading"),
        ("extract_audio", "decoding"),
        ("transcribe", "transcribing"),
        ("diarization", "diarizing"),
        ("known_speaker_diarization", "diarizing"),
        ("render_artifacts", "rendering"),
        ("complete", "rendering"),
        ("transcribing", "transcribing"),  # Voxhelm's own worker's name
    ],
)
def test_the_producer_sees_the_phase_a_worker_reports_under_either_name(
    leased: tuple[httpx.Client, httpx.Client, dict[str, Any]], reported: str, shown: str
) -> None:
    producer, worker, job = leased
    assert seen_by_producer(producer, job) == "downloading"  # a claim starts there
    if shown == "downloading":
        # From the start phase the beat would change nothing visible: go somewhere else first.
        assert beat(worker, job, {"phase": "rendering"}).status_code == 200
        assert seen_by_producer(producer, job) == "rendering"
    response = beat(worker, job, {"phase": reported})
    assert response.status_code == 200, response.text
    assert seen_by_producer(producer, job) == shown


def test_the_reference_workers_run_moves_the_phase_at_each_step(
    leased: tuple[httpx.Client, httpx.Client, dict[str, Any]],
) -> None:
    producer, worker, job = leased
    seen = []
    for reported in ("materialize_input", "transcribe", "render_artifacts", "complete"):
        assert beat(worker, job, {"phase": reported, "message": "working"}).status_code == 200
        seen.append(seen_by_producer(producer, job))
    assert seen == ["downloading", "transcribing", "rendering", "rendering"]


@pytest.mark.parametrize("phase", ["uploading", "Transcribe", "speaking"])
def test_an_unknown_phase_is_refused_with_the_names_it_takes(
    leased: tuple[httpx.Client, httpx.Client, dict[str, Any]], phase: str
) -> None:
    producer, worker, job = leased
    assert beat(worker, job, {"phase": "transcribe"}).status_code == 200
    response = beat(worker, job, {"phase": phase, "percent": 60})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "progress.phase"
    assert phase in error["message"]
    for accepted in ("downloading", "transcribing", "materialize_input", "transcribe"):
        assert accepted in error["message"]
    body = producer.get(f"/v1/jobs/{job['id']}").json()
    assert body["progress"]["phase"] == "transcribing"  # nothing of the refused beat stored
    assert body["progress"]["percent"] != 60

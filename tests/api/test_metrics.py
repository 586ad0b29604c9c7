"""GET /metrics: Prometheus text for the metrics token only, parsed with prometheus-client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.scrape import scrape, value
from tests.conftest import (
    METRICS_TOKEN,
    PRODUCER_TOKEN,
    WORKER_TOKEN,
    ServerProcess,
    make_config,
    start_server,
)
from tests.speech import synthesize
from voxhelm.checks import config_messages
from voxhelm.jobs.models import Job, JobState


@pytest.mark.slow
def test_a_scrape_after_a_transcription_shows_what_happened(server: ServerProcess) -> None:
    before = scrape(server)
    oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)
    clip = synthesize("Please turn on the kitchen lights.")
    oai.audio.transcriptions.create(model="whisper-1", file=("clip.wav", clip.wav_bytes()))
    after = scrape(server)

    route = {"endpoint": "/v1/audio/transcriptions", "method": "POST"}
    assert value(after, "voxhelm_http_requests_total", status="200", **route) == (
        value(before, "voxhelm_http_requests_total", status="200", **route) + 1
    )
    assert value(after, "voxhelm_http_request_duration_seconds_count", **route) == (
        value(before, "voxhelm_http_request_duration_seconds_count", **route) + 1
    )
    engine = {"backend": "fasterwhisper", "model": "tiny.en"}
    assert value(after, "voxhelm_stt_realtime_factor_count", **engine) >= 1 + value(
        before, "voxhelm_stt_realtime_factor_count", **engine
    )
    assert value(after, "voxhelm_stt_audio_seconds_total", **engine) - value(
        before, "voxhelm_stt_audio_seconds_total", **engine
    ) == pytest.approx(clip.duration, abs=0.1)
    assert value(after, "voxhelm_lane_wait_seconds_count", lane="non-interactive") >= 1
    assert value(after, "voxhelm_model_loads_total", **engine) >= 1
    assert value(after, "voxhelm_models_loaded", pinned="true", **engine) == 1
    assert value(after, "voxhelm_inference_in_flight") == 0
    # Job states come from the database at scrape time: every state is there, 0 or more.
    states = {
        dict(labels)["state"]
        for (name, labels) in after
        if name == "voxhelm_jobs" and dict(labels)["job_type"] == "transcribe"
    }
    assert states == set(JobState.values)
    assert value(after, "voxhelm_build_info") == 1


@pytest.mark.slow
def test_it_answers_only_the_metrics_token(server: ServerProcess) -> None:
    for token in (None, PRODUCER_TOKEN, WORKER_TOKEN, "wrong"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.get(f"{server.url}/metrics", headers=headers)
        assert response.status_code == 401, token
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "voxhelm_" not in response.text


@pytest.mark.slow
def test_the_server_log_never_shows_a_token(server: ServerProcess) -> None:
    with server.client() as client:
        client.get("/v1/health")
        client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    log = server.log()
    assert "GET /v1/health 200" in log
    assert "producer=archive" in log
    for secret in (PRODUCER_TOKEN, METRICS_TOKEN, WORKER_TOKEN):
        assert secret not in log


def test_it_is_off_without_a_metrics_token(configure: Any, client: Any) -> None:
    configure()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"})
    assert response.status_code == 404
    assert "VOXHELM_METRICS_TOKEN" in response.content.decode()


@pytest.mark.django_db
def test_it_counts_jobs_by_state_from_the_database(configure: Any, client: Any) -> None:
    configure(VOXHELM_METRICS_TOKEN="scraper")
    for state in (JobState.QUEUED, JobState.QUEUED, JobState.FAILED):
        Job.objects.create(producer="archive", job_type="transcribe", input_data={}, state=state)
    Job.objects.create(producer="archive", job_type="synthesize", input_data={})
    response = client.get("/metrics", headers={"Authorization": "Bearer scraper"})
    assert response.status_code == 200
    jobs = {
        (sample.labels["state"], sample.labels["job_type"]): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        if family.name == "voxhelm_jobs"
        for sample in family.samples
    }
    assert jobs[("queued", "transcribe")] == 2
    assert jobs[("failed", "transcribe")] == 1
    assert jobs[("running", "transcribe")] == 0
    assert jobs[("queued", "synthesize")] == 1


def test_a_metrics_token_shared_with_a_producer_is_refused() -> None:
    config = make_config(VOXHELM_METRICS_TOKEN=PRODUCER_TOKEN)
    assert "voxhelm.E020" in [message.id for message in config_messages(config)]
    assert "voxhelm.E020" not in [m.id for m in config_messages(make_config())]


@pytest.mark.slow
def test_multiprocess_mode_reads_what_the_processes_wrote(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    server = start_server(
        tmp_path,
        {"VOXHELM_METRICS_TOKEN": METRICS_TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(shared)},
    )
    try:
        with server.client() as client:
            for _ in range(3):
                assert client.get("/v1/health").status_code == 200
        samples = scrape(server)
    finally:
        server.stop()
    # The start-up probe and the three requests above, read back from the shared files.
    assert value(samples, "voxhelm_http_requests_total", endpoint="/v1/health") >= 4
    assert {path.name.split("_")[0] for path in shared.iterdir()} >= {"counter", "histogram"}
    assert value(samples, "voxhelm_build_info") == 1

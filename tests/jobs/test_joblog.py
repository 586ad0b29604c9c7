"""The per-job outcome line: ids, producer, timings and engine; never prompt, text or token."""

from __future__ import annotations

import json
import logging

import pytest

from voxhelm.jobs.joblog import log_outcome
from voxhelm.jobs.models import Job
from voxhelm.logformat import JsonFormatter, TextFormatter

pytestmark = pytest.mark.django_db


def test_it_logs_a_finished_job_as_one_structured_line(caplog: pytest.LogCaptureFixture) -> None:
    job = Job.objects.create(
        producer="archive",
        task_ref="episode-42",
        job_type="transcribe",
        input_data={},
        prompt="Secret names: Quillboro",
    )
    assert job.mark_running("host:1")
    metadata = {
        "backend": "fasterwhisper",
        "model": "tiny.en",
        "duration_seconds": 12.5,
        "processing_seconds": 1.25,
    }
    assert job.mark_succeeded("The transcript text.", metadata)
    with caplog.at_level(logging.INFO, logger="voxhelm.jobs"):
        log_outcome(job)
    (record,) = [r for r in caplog.records if r.name == "voxhelm.jobs"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == f"job {job.pk} succeeded"
    assert entry["job_id"] == str(job.pk)
    assert entry["producer"] == "archive"
    assert entry["task_ref"] == "episode-42"
    assert (entry["state"], entry["attempt"], entry["worker"]) == ("succeeded", 1, "host:1")
    assert (entry["backend"], entry["model"]) == ("fasterwhisper", "tiny.en")
    assert entry["audio_seconds"] == 12.5
    assert entry["run_ms"] >= 0
    assert entry["queued_ms"] >= 0
    assert "error_code" not in entry
    for line in (json.dumps(entry), TextFormatter().format(record)):
        assert "Quillboro" not in line
        assert "transcript text" not in line


def test_a_failed_job_names_its_error_code(caplog: pytest.LogCaptureFixture) -> None:
    job = Job.objects.create(producer="archive", job_type="transcribe", input_data={})
    assert job.mark_running("host:1")
    assert job.mark_failed("unsupported_media", "The file could not be decoded.")
    with caplog.at_level(logging.INFO, logger="voxhelm.jobs"):
        log_outcome(job)
    text = TextFormatter().format(caplog.records[-1])
    assert "state=failed" in text
    assert "error_code=unsupported_media" in text

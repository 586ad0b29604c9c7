"""Sync console runs as job rows: a run whose process died is failed, never re-queued."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.utils import timezone

from voxhelm.artifacts.models import JobArtifact
from voxhelm.batch.request import JobOutputs, JobRequest, UploadSource
from voxhelm.config import Config
from voxhelm.jobs.heartbeat import worker_identity
from voxhelm.jobs.models import DispatchMode, Job, JobState
from voxhelm.jobs.submit import submit_request
from voxhelm.jobs.sweeper import sweep


def test_a_sync_run_whose_process_died_is_failed_by_the_sweeper(
    console_config: Config, db: None
) -> None:
    request = JobRequest(
        UploadSource(filename="talk.wav", content_type="audio/wav"), JobOutputs(("json",))
    )
    job = submit_request(
        "operator:olivia",
        request,
        console_config,
        dispatch=DispatchMode.SYNC,
        worker=worker_identity(),
    ).job
    assert (job.state, job.dispatch_mode, job.attempt_count, job.max_attempts) == (
        JobState.RUNNING,
        "sync",
        1,
        1,
    )
    assert sweep(console_config).failed == []  # a live run is left alone
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    report = sweep(console_config)
    job.refresh_from_db()
    assert report.failed == [job.pk] and report.requeued == []
    assert (job.state, job.error_code) == (JobState.FAILED, "worker_lost")


def test_the_transcript_page_shows_speaker_labels(
    operator_client: Any, console_config: Config
) -> None:
    job = Job.objects.create(
        producer="operator:olivia",
        request_fingerprint="x",
        input_data={"kind": "url", "url": "https://media.example.com/panel.mp3"},
        state=JobState.SUCCEEDED,
    )
    segments = [
        {"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": " Welcome.", "speaker": "Speaker 1"},
        {
            "id": 1,
            "seek": 250,
            "start": 2.5,
            "end": 4.0,
            "text": " Thanks!",
            "speaker": "Speaker 2",
        },
    ]
    JobArtifact.objects.put(
        job,
        "transcript.json",
        kind="transcript_json",
        format="json",
        content_type="application/json",
        exposed=True,
        data=json.dumps(
            {"task": "transcribe", "language": "en", "text": "", "segments": segments}
        ).encode(),
        config=console_config.artifacts,
    )
    page = operator_client.get(f"/transcripts/{job.pk}").content.decode()
    assert page.count('class="speaker"') == 2
    assert "Speaker 1" in page and "Speaker 2" in page and 'data-start="2.500"' in page
    assert "panel.mp3" in page
    # No source artifact: no player, and the sentences are text, not links to a moment.
    assert "<audio" not in page and 'class="sentence"' in page and 'href="#t=' not in page

"""voxhelm.W005: a job type that no process can run is reported from what the database shows
(remote workers seen and what they advertise; queued jobs nobody took)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.checks import run_checks
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.jobs.conftest import JobsApi, job_body
from tests.workers.conftest import REMOTE_ENV, WorkerApi
from voxhelm.config import Config
from voxhelm.jobs.models import Job, LocalWorker
from voxhelm.workers import topology
from voxhelm.workers.models import Worker
from voxhelm.workers.topology import topology_messages

SPEECH = {"job_type": "synthesize", "input": {"kind": "text", "text": "Good evening."}}


def warnings(config: Config) -> list[str]:
    messages = topology_messages(config, timezone.now())
    assert {message.id for message in messages} <= {"voxhelm.W005"}
    return [message.msg for message in messages]


def beat_local_worker(config: Config, seconds_ago: float = 0, queue: str | None = None) -> None:
    """A local worker's row, as its last beat ``seconds_ago`` left it."""
    LocalWorker.objects.beat(
        f"worker-host:{LocalWorker.objects.count() + 1}",
        queue or config.execution.task_queue,
        timezone.now() - timedelta(seconds=seconds_ago),
    )


def queue_old_jobs(jobs: JobsApi) -> None:
    """A transcription and a synthesis job, queued ten minutes ago."""
    for body in (job_body(), SPEECH):
        assert jobs.submit(body).status_code == 201
    Job.objects.update(created_at=timezone.now() - timedelta(minutes=10))


def test_it_warns_when_no_remote_worker_was_seen(
    remote_config: Config, transactional_db: None
) -> None:
    found = warnings(remote_config)
    assert len(found) == 2
    assert "runs transcribe jobs" in found[0] and "runs synthesize jobs" in found[1]


def test_synthesis_kept_local_is_not_asked_of_remote_workers(
    configure: Callable[..., Config], transactional_db: None
) -> None:
    config = configure(**REMOTE_ENV, VOXHELM_SYNTHESIS_EXECUTION_MODE="django_tasks")
    beat_local_worker(config)  # synthesis has its local worker
    found = warnings(config)
    assert len(found) == 1 and "runs transcribe jobs" in found[0]


def test_a_worker_that_advertises_everything_silences_it(
    worker: WorkerApi, remote_config: Config
) -> None:
    assert worker.heartbeat(capabilities=worker.capabilities).status_code == 200
    assert warnings(remote_config) == []


def test_an_older_worker_leaves_synthesis_unserved(
    worker: WorkerApi, remote_config: Config
) -> None:
    capabilities = {**worker.capabilities, "job_types": ["transcribe"]}
    assert worker.heartbeat(capabilities=capabilities).status_code == 200
    found = warnings(remote_config)
    assert len(found) == 1 and "runs synthesize jobs" in found[0]


def test_a_worker_not_seen_for_minutes_does_not_count(
    worker: WorkerApi, remote_config: Config
) -> None:
    assert worker.heartbeat(capabilities=worker.capabilities).status_code == 200
    Worker.objects.update(last_seen_at=timezone.now() - timedelta(minutes=5))
    assert len(warnings(remote_config)) == 2
    Worker.objects.update(enabled=False, last_seen_at=timezone.now())
    assert len(warnings(remote_config)) == 2


def test_jobs_no_seen_worker_can_run_are_reported(
    worker: WorkerApi, jobs: JobsApi, remote_config: Config
) -> None:
    capabilities = {**worker.capabilities, "output_formats": ["json", "text", "wav"]}
    assert worker.heartbeat(capabilities=capabilities).status_code == 200
    assert jobs.submit(job_body(output={"formats": ["vtt"]})).status_code == 201
    assert warnings(remote_config) == []  # not waiting long yet
    Job.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    found = warnings(remote_config)
    assert len(found) == 1
    assert found[0].startswith("1 transcribe job(s) have been queued for more than 5 minutes")


@pytest.fixture
def web_only(configure: Callable[..., Config], transactional_db: None) -> Config:
    """The default mode, served by `voxhelm web` alone: no local worker takes tasks."""
    return configure(**{**REMOTE_ENV, "VOXHELM_TRANSCRIPTION_EXECUTION_MODE": "django_tasks"})


def test_web_alone_is_reported_at_once_in_the_default_mode(client: Any, web_only: Config) -> None:
    found = warnings(web_only)
    assert found == [
        "No local worker on task queue 'default' has been seen in the last 30 seconds: "
        "synthesize and transcribe jobs wait in the queue until one runs."
    ]
    queue_old_jobs(JobsApi(client))
    assert warnings(web_only) == found  # the jobs that wait meanwhile are not told twice


def test_a_local_worker_counts_while_its_beats_are_fresh(
    configure: Callable[..., Config], transactional_db: None
) -> None:
    config = configure(VOXHELM_JOB_HEARTBEAT_SECONDS="2", VOXHELM_JOB_STALE_SECONDS="10")
    beat_local_worker(config, seconds_ago=9)
    assert warnings(config) == []
    LocalWorker.objects.update(last_seen_at=timezone.now() - timedelta(seconds=11))
    found = warnings(config)
    assert len(found) == 1 and found[0].startswith("No local worker on task queue 'default'")
    assert "in the last 10 seconds" in found[0]
    # A fresh worker on another queue never takes this server's tasks.
    beat_local_worker(config, queue="elsewhere")
    assert len(warnings(config)) == 1
    beat_local_worker(config, seconds_ago=1)
    assert warnings(config) == []


def test_only_job_types_run_locally_need_a_local_worker(
    configure: Callable[..., Config], worker: WorkerApi
) -> None:
    config = configure(**REMOTE_ENV, VOXHELM_SYNTHESIS_EXECUTION_MODE="django_tasks")
    assert worker.heartbeat(capabilities=worker.capabilities).status_code == 200
    found = warnings(config)
    assert len(found) == 1 and found[0].endswith(
        "synthesize jobs wait in the queue until one runs."
    )
    assert warnings(configure(**REMOTE_ENV)) == []  # all remote: no local worker asked for


def test_it_warns_when_local_jobs_wait_and_no_local_worker_starts_tasks(
    client: Any, web_only: Config
) -> None:
    jobs = JobsApi(client)
    queue_old_jobs(jobs)
    # A local worker beats, but its loop starts no task (it keeps crashing, say).
    beat_local_worker(web_only)
    found = warnings(web_only)
    assert [text.split(" have been")[0] for text in found] == [
        "1 synthesize job(s)",
        "1 transcribe job(s)",
    ]
    # A local worker that started any task in the last minutes is alive: no warning.
    DBTaskResult.objects.filter(pk=Job.objects.first().django_task_id).update(  # type: ignore[union-attr]
        started_at=timezone.now() - timedelta(minutes=1)
    )
    assert warnings(web_only) == []


def test_it_reads_the_database_only_when_the_checks_are_asked_to(
    remote_config: Config, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test database is not at the configured path that database_ready() looks for; it
    # is a real, migrated database all the same.
    monkeypatch.setattr(topology, "database_ready", lambda: True)
    # serve, web and worker run the checks before migrating, without databases: W005 must
    # stay silent there (it would also warn about jobs the starting worker is about to take).
    assert [m.id for m in run_checks(tags=["database"])] == []
    found = run_checks(tags=["database"], databases=["default"])
    assert {m.id for m in found} == {"voxhelm.W005"}

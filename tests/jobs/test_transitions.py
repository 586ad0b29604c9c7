"""Every remote transition of a ``Job``, from each state it may or may not start from: the
allowed ones change the row (and the instance), the refused ones return False and leave
the row as it was. Each UPDATE restates what the caller saw, so a concurrent change wins."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from voxhelm.jobs.models import LEASE_EXHAUSTED, ExecutionMode, Job, JobPhase, JobState

pytestmark = pytest.mark.django_db

TOKEN = "lease-token"
STORE = {"backend": "filesystem", "root": "/artifacts"}


def remote_job(**fields: Any) -> Job:
    defaults: dict[str, Any] = {
        "producer": "archive",
        "execution_mode": ExecutionMode.REMOTE,
        "input_data": {"kind": "url", "url": "https://media.example.com/a.mp3"},
    }
    return Job.objects.create(**{**defaults, **fields})


def lease(job: Job, now: datetime, worker: str = "atlas", seconds: int = 60) -> bool:
    return job.lease(
        worker,
        TOKEN,
        now,
        expires_at=now + timedelta(seconds=seconds),
        prefix=f"jobs/{job.pk}/attempt-{job.attempt_count + 1}/",
        store=STORE,
    )


def row(job: Job) -> dict[str, Any]:
    return Job.objects.filter(pk=job.pk).values().get()


def test_a_lease_starts_the_next_attempt_of_a_queued_job() -> None:
    job, now = remote_job(), timezone.now()
    assert lease(job, now)
    assert job.state == JobState.RUNNING
    assert (job.attempt_count, job.assigned_worker_id, job.phase) == (1, "atlas", "downloading")
    assert job.lease_token_hash and job.lease_token_hash != TOKEN  # only the hash is kept
    assert job.started_at == now and job.leased_artifact_store == STORE


def test_a_lease_takes_over_an_expired_one_and_keeps_the_first_start() -> None:
    now = timezone.now()
    job = remote_job()
    assert lease(job, now - timedelta(seconds=120), seconds=30)
    first_start = job.started_at
    assert lease(job, now, worker="boreas")
    assert (job.attempt_count, job.assigned_worker_id) == (2, "boreas")
    assert job.started_at == first_start


@pytest.mark.parametrize(
    "fields",
    [
        {"state": JobState.RUNNING, "lease_expires_at": "future"},  # a live lease
        {"state": JobState.SUCCEEDED},
        {"state": JobState.CANCELED},
        {"attempt_count": 3, "max_attempts": 3},  # no attempt left
        {"execution_mode": ExecutionMode.LOCAL},  # not a remote job
    ],
)
def test_a_lease_is_refused_where_no_attempt_may_start(fields: dict[str, Any]) -> None:
    now = timezone.now()
    if fields.get("lease_expires_at") == "future":
        fields = {**fields, "lease_expires_at": now + timedelta(seconds=60)}
    job = remote_job(**fields)
    before = row(job)
    assert not lease(job, now)
    assert row(job) == before


def test_a_lease_restates_the_attempt_it_saw() -> None:
    now = timezone.now()
    job = remote_job()
    stale = Job.objects.get(pk=job.pk)
    assert lease(job, now)
    assert not lease(stale, now)  # another claim took it meanwhile
    assert Job.objects.get(pk=job.pk).assigned_worker_id == "atlas"


def test_a_job_no_claim_may_start_fails_from_the_state_it_was_seen_in() -> None:
    now = timezone.now()
    job = remote_job()
    stale = Job.objects.get(pk=job.pk)
    assert job.fail_unclaimable("url_not_allowed", "URL host is not allowed.", now)
    assert (job.state, job.error_code, job.finished_at) == (JobState.FAILED, "url_not_allowed", now)
    assert not stale.fail_unclaimable("other", "other", now)  # it moved on: refused
    assert Job.objects.get(pk=job.pk).error_code == "url_not_allowed"


def test_an_expired_lease_requeues_while_attempts_remain() -> None:
    now = timezone.now()
    job = remote_job()
    assert lease(job, now - timedelta(seconds=120), seconds=30)
    assert job.expire_lease(now) == JobState.QUEUED
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.assigned_worker_id, stored.lease_token_hash) == ("queued", "", "")
    assert (stored.attempt_count, stored.phase) == (1, JobPhase.NONE)


def test_an_expired_lease_on_the_last_attempt_fails_the_job() -> None:
    now = timezone.now()
    job = remote_job(max_attempts=1)
    assert lease(job, now - timedelta(seconds=120), seconds=30)
    assert job.expire_lease(now) == JobState.FAILED
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.error_code) == (JobState.FAILED, "lease_expired")
    assert stored.error_detail == LEASE_EXHAUSTED


def test_a_lease_extended_meanwhile_does_not_expire() -> None:
    now = timezone.now()
    job = remote_job()
    assert lease(job, now - timedelta(seconds=120), seconds=30)
    seen = Job.objects.get(pk=job.pk)
    assert Job.objects.renew_lease(
        job.pk,
        "atlas",
        TOKEN,
        now - timedelta(seconds=100),
        expires_at=now + timedelta(seconds=60),
        report={"progress": 40},
    )
    before = row(job)
    assert seen.expire_lease(now) is None
    assert row(job) == before


def test_an_expired_lease_is_never_renewed() -> None:
    now = timezone.now()
    job = remote_job()
    assert lease(job, now - timedelta(seconds=120), seconds=30)
    before = row(job)
    renewed = Job.objects.renew_lease(
        job.pk, "atlas", TOKEN, now, expires_at=now + timedelta(seconds=60), report={}
    )
    assert not renewed
    assert row(job) == before


def test_a_leased_attempt_succeeds_only_with_its_own_lease() -> None:
    now = timezone.now()
    job = remote_job()
    assert lease(job, now)
    assert not job.succeed_lease("atlas", "other-token", now, text="x", metadata={})
    assert not job.succeed_lease("boreas", TOKEN, now, text="x", metadata={})
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    assert job.succeed_lease("atlas", TOKEN, now, text="Hello.", metadata={"a": 1})
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.result_text, stored.progress) == ("succeeded", "Hello.", 100)
    assert not job.succeed_lease("atlas", TOKEN, now, text="again", metadata={})


@pytest.mark.parametrize(("requeue", "state"), [(True, JobState.QUEUED), (False, JobState.FAILED)])
def test_a_failed_attempt_requeues_or_fails_under_its_lease(requeue: bool, state: JobState) -> None:
    now = timezone.now()
    job = remote_job()
    assert lease(job, now)
    assert not job.fail_lease("atlas", "other-token", now, requeue=requeue, code="x", detail="x")
    assert job.fail_lease("atlas", TOKEN, now, requeue=requeue, code="boom", detail="Bad.")
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.error_code, stored.error_detail) == (state, "boom", "Bad.")
    assert stored.lease_token_hash == ("" if requeue else job.lease_token_hash)
    assert not job.fail_lease("atlas", TOKEN, now, requeue=requeue, code="x", detail="x")


def test_claimable_is_one_definition_for_local_and_remote_jobs() -> None:
    now = timezone.now()
    queued_local = remote_job(execution_mode=ExecutionMode.LOCAL)
    queued_remote = remote_job()
    expired = remote_job()
    assert lease(expired, now - timedelta(seconds=120), seconds=30)
    live = remote_job()
    assert lease(live, now)
    remote_job(attempt_count=3, max_attempts=3)  # used up
    assert set(Job.objects.claimable()) == {queued_local, queued_remote}
    assert set(Job.objects.remote().claimable(now)) == {queued_remote, expired}
    assert set(Job.objects.local().claimable()) == {queued_local}

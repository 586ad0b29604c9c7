"""task_ref idempotency: the same request maps to its live job; anything else is new."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from tests.jobs.conftest import JobsApi, job_body
from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobQuerySet, JobState


def submit(api: JobsApi, token: str | None = None, **fields: Any) -> tuple[int, str]:
    fields.setdefault("task_ref", "episode-42")
    kwargs = {"token": token} if token else {}
    response = api.submit(job_body(**fields), **kwargs)
    assert response.status_code in (200, 201), response.content
    return response.status_code, response.json()["id"]


def test_an_identical_resubmission_returns_the_same_job(api: JobsApi) -> None:
    status, first = submit(api)
    assert status == 201
    assert submit(api) == (200, first)
    assert Job.objects.count() == 1


def test_format_order_and_aliases_do_not_matter(api: JobsApi) -> None:
    _, first = submit(api, output={"formats": ["text", "json", "vtt"]})
    assert submit(api, output={"formats": ["VTT", "json", "text"]}) == (200, first)
    assert submit(api, output={"formats": ["webvtt", "text", "json", "json"]}) == (200, first)


def test_fields_that_do_not_change_the_result_are_ignored(api: JobsApi) -> None:
    _, first = submit(api, priority="low", context={"a": 1})
    assert submit(api, priority="high", context={"b": 2}, lane="batch") == (200, first)


def test_an_absent_language_equals_an_empty_one(api: JobsApi) -> None:
    _, first = submit(api)
    assert submit(api, language="") == (200, first)
    assert submit(api, language=None) == (200, first)


@pytest.mark.parametrize(
    "change",
    [
        {"output": {"formats": ["text", "json", "srt"]}},
        {"output": {"formats": ["text"]}},
        {"model": "whisper-1"},
        {"language": "en"},
        {"input": {"kind": "url", "url": "https://media.example.com/other.mp3"}},
    ],
)
def test_a_result_affecting_change_makes_a_new_job(api: JobsApi, change: dict[str, Any]) -> None:
    _, first = submit(api)
    status, second = submit(api, **change)
    assert status == 201
    assert second != first


def test_repeats_map_to_the_right_job_even_interleaved(api: JobsApi) -> None:
    plain = {"output": {"formats": ["text", "json"]}}
    subtitles = {"output": {"formats": ["vtt", "srt"]}}
    _, first = submit(api, **plain)
    _, second = submit(api, **subtitles)
    assert first != second
    assert submit(api, **plain) == (200, first)
    assert submit(api, **subtitles) == (200, second)
    assert submit(api, **plain) == (200, first)
    assert Job.objects.count() == 2


def test_another_producers_task_ref_is_separate(api: JobsApi, other_token: str) -> None:
    _, mine = submit(api)
    status, theirs = submit(api, token=other_token)
    assert status == 201
    assert theirs != mine
    assert submit(api, token=other_token) == (200, theirs)


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.CANCELED])
def test_failed_and_canceled_jobs_are_not_reused(api: JobsApi, state: str) -> None:
    _, first = submit(api)
    Job.objects.filter(pk=first).update(state=state)
    status, second = submit(api)
    assert status == 201
    assert second != first
    assert submit(api) == (200, second)


def test_without_task_ref_every_submission_is_a_new_job(api: JobsApi) -> None:
    first = api.submit(job_body()).json()["id"]
    second = api.submit(job_body()).json()["id"]
    assert first != second


def test_a_retry_finds_its_job_after_the_allowlist_changed(
    api: JobsApi, configure: Callable[..., Config]
) -> None:
    _, first = submit(api)
    configure(VOXHELM_ALLOWED_URL_HOSTS="elsewhere.example.com")
    assert submit(api) == (200, first)


def test_a_submission_that_loses_the_race_returns_the_winner(
    api: JobsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Make the idempotency lookup miss once, as it does for a submission whose twin commits
    # between its lookup and its insert: the unique index must then turn the insert into
    # an answer with the winner. (The real race runs against a server in test_batch.py.)
    _, winner = submit(api)
    lookup = JobQuerySet.reusable
    misses = iter([True])

    def late_lookup(self: JobQuerySet, *args: Any) -> JobQuerySet:
        return self.none() if next(misses, False) else lookup(self, *args)

    monkeypatch.setattr(JobQuerySet, "reusable", late_lookup)
    assert submit(api) == (200, winner)
    assert Job.objects.count() == 1
    assert DBTaskResult.objects.count() == 1  # the loser's task went with its transaction

"""GET /v1/jobs in-process: order, paging (ties, deleted cursors), filters, refused parameters.

The real server and the official openai client page through jobs in test_management.py;
here the rows' times are set by hand, so ties and ranges are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.jobs.conftest import JobsApi, job_body
from voxhelm.jobs.models import Job

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_jobs(api: JobsApi, count: int, *, same_time: bool = False) -> list[str]:
    """``count`` queued jobs, oldest first, one minute apart (or all at T0)."""
    ids = []
    for index in range(count):
        ids.append(api.submit(job_body(task_ref=f"ep-{index}")).json()["id"])
        moment = T0 if same_time else T0 + timedelta(minutes=index)
        Job.objects.filter(pk=ids[-1]).update(created_at=moment)
    return ids


def listed(api: JobsApi, query: str = "", token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token or 'test-token'}"}
    return api.client.get(f"/v1/jobs{query}", headers=headers)


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [job["id"] for job in response.json()["data"]]


def test_it_lists_the_callers_jobs_newest_first_as_an_openai_list(
    api: JobsApi, other_token: str
) -> None:
    ids = make_jobs(api, 3)
    api.submit(job_body(task_ref="theirs"), token=other_token)
    body = listed(api).json()
    assert body["object"] == "list"
    assert [job["id"] for job in body["data"]] == ids[::-1]
    assert body["first_id"] == ids[2] and body["last_id"] == ids[0]
    assert body["has_more"] is False and body["next_cursor"] is None
    assert body["data"][0]["object"] == "job" and body["data"][0]["task_ref"] == "ep-2"
    empty = listed(api, "?task_ref=nothing").json()
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
        "next_cursor": None,
    }


@pytest.mark.parametrize("same_time", [False, True])
def test_it_pages_with_after_and_limit_without_skipping_or_repeating(
    api: JobsApi, same_time: bool
) -> None:
    ids = make_jobs(api, 7, same_time=same_time)
    seen: list[str] = []
    query = "?limit=3"
    pages = 0
    while True:
        body = listed(api, query).json()
        pages += 1
        seen += [job["id"] for job in body["data"]]
        if not body["has_more"]:
            break
        query = f"?limit=3&after={body['last_id']}"
    assert pages == 3
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    if not same_time:
        assert seen == ids[::-1]


def test_next_cursor_still_pages_on_after_its_job_was_deleted(api: JobsApi) -> None:
    ids = make_jobs(api, 5)
    first = listed(api, "?limit=2").json()
    Job.objects.filter(pk=first["last_id"]).delete()
    by_id = listed(api, f"?limit=2&after={first['last_id']}")
    assert by_id.status_code == 400
    assert by_id.json()["error"]["param"] == "after"
    assert "next_cursor" in by_id.json()["error"]["message"]
    second = listed(api, f"?limit=2&after={first['next_cursor']}")
    assert ids_of(second) == [ids[2], ids[1]]


def test_it_filters_by_state_task_ref_job_type_and_creation_time(api: JobsApi) -> None:
    ids = make_jobs(api, 4)
    Job.objects.get(pk=ids[0]).cancel()
    Job.objects.get(pk=ids[1]).cancel()
    assert ids_of(listed(api, "?state=canceled")) == [ids[1], ids[0]]
    assert ids_of(listed(api, "?state=queued,canceled")) == ids[::-1]
    assert ids_of(listed(api, "?state=succeeded")) == []
    assert ids_of(listed(api, "?task_ref=ep-2")) == [ids[2]]
    assert ids_of(listed(api, "?job_type=synthesize")) == []
    assert ids_of(listed(api, "?job_type=transcribe")) == ids[::-1]
    # created_after is inclusive, created_before exclusive; unix seconds or ISO-8601.
    after = int((T0 + timedelta(minutes=1)).timestamp())
    assert ids_of(listed(api, f"?created_after={after}")) == [ids[3], ids[2], ids[1]]
    assert ids_of(listed(api, "?created_before=2026-03-01T12:02:00Z")) == [ids[1], ids[0]]
    assert ids_of(
        listed(api, f"?created_after={after}&created_before=2026-03-01T13:02:00%2B01:00")
    ) == [ids[1]]
    assert ids_of(listed(api, "?created_after=2026-03-01T12:03:00")) == [ids[3]]  # naive: UTC


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("?status=queued", "status"),
        ("?order=asc", "order"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?state=done", "state"),
        ("?state=", "state"),
        ("?state=queued&state=failed", "state"),
        ("?job_type=translate", "job_type"),
        ("?created_after=yesterday", "created_after"),
        ("?created_before=2026-13-01", "created_before"),
        ("?after=not-a-cursor", "after"),
        ("?after=cur_!!!", "after"),
        ("?after=00000000-0000-4000-8000-000000000000", "after"),
    ],
)
def test_it_refuses_a_bad_or_unknown_parameter(api: JobsApi, query: str, param: str) -> None:
    response = listed(api, query)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_another_producers_job_is_no_cursor(api: JobsApi, other_token: str) -> None:
    theirs = api.submit(job_body(task_ref="theirs"), token=other_token).json()["id"]
    response = listed(api, f"?after={theirs}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_a_list_needs_a_producer_token(api: JobsApi) -> None:
    assert api.client.get("/v1/jobs").status_code == 401
    assert listed(api, token="worker-token").status_code == 401

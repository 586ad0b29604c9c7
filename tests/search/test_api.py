"""GET /v1/search: hits with job id, start and a marked snippet; ranking; the caller's jobs
only; pages; hostile queries refused in the envelope; the index follows changes and deletions.

Runs on SQLite (FTS5) and, in CI's second pass, on PostgreSQL (VOXHELM_TEST_POSTGRES=1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from tests.conftest import OTHER_PRODUCER_TOKEN, PRODUCER_TOKEN
from tests.search.conftest import store_transcript
from voxhelm.config import Config
from voxhelm.jobs.models import Job
from voxhelm.jobs.signals import transcript_changed
from voxhelm.search.models import IndexedSegment

Transcribed = Callable[..., str]
Searcher = Callable[..., Any]


def hits(searcher: Searcher, q: str, token: str = PRODUCER_TOKEN, **params: Any) -> list[Any]:
    response = searcher(urlencode({"q": q, **params}), token=token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "list"
    return list(body["data"])


def test_it_answers_the_segment_with_its_job_start_and_a_marked_snippet(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    job_id = transcribed(
        [
            (0.0, "Welcome back to the show."),
            (3.5, "Today we talk about the lighthouse keeper of Harwich.", "Speaker 2"),
            (9.25, "And then the weather."),
        ],
        name="episode-7.mp3",
    )
    found = hits(searcher, "Lighthouse")
    assert len(found) == 1
    hit = found[0]
    assert hit["object"] == "search.hit"
    assert (hit["job_id"], hit["start"], hit["end"]) == (job_id, 3.5, 9.25)
    assert hit["speaker"] == "Speaker 2"
    assert hit["source_name"] == "episode-7.mp3"
    assert hit["text"] == "Today we talk about the lighthouse keeper of Harwich."
    assert "<mark>lighthouse</mark> keeper" in hit["snippet"]
    assert hits(searcher, "lighthouse weather") == []  # every term, in one segment
    assert [h["start"] for h in hits(searcher, '"keeper of harwich"')] == [3.5]
    assert hits(searcher, '"harwich keeper"') == []  # a phrase keeps its order


def test_it_ranks_the_segment_about_the_words_above_a_passing_mention(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    passing = transcribed(
        [
            (
                0.0,
                "We drove along the coast for hours and hours, and somewhere near the old "
                "harbour we stopped for lunch, then talked about everything but the master plan.",
            ),
        ]
    )
    about = transcribed([(12.0, "The harbour master. The harbour master runs the harbour.")])
    found = hits(searcher, "harbour master")
    assert [hit["job_id"] for hit in found] == [about, passing]


def test_it_never_returns_another_producers_segments(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    mine = transcribed([(0.0, "The secret recipe is cardamom.")])
    theirs = transcribed(
        [(5.0, "Their secret recipe is cardamom too.")], token=OTHER_PRODUCER_TOKEN
    )
    assert [hit["job_id"] for hit in hits(searcher, "cardamom")] == [mine]
    found = hits(searcher, "cardamom", token=OTHER_PRODUCER_TOKEN)
    assert [hit["job_id"] for hit in found] == [theirs]
    assert hits(searcher, "their") == []


def test_it_pages_with_a_cursor_tied_to_its_query(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    transcribed([(float(second), f"Chapter {second} of the tide tables.") for second in range(7)])
    seen: list[float] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        response = searcher(urlencode({"q": "tide", **params}))
        body = response.json()
        pages += 1
        seen += [hit["start"] for hit in body["data"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        params = {"limit": 3, "after": body["next_cursor"]}
    assert pages == 3 and sorted(seen) == [float(second) for second in range(7)]
    first = searcher(urlencode({"q": "tide", "limit": 3})).json()
    other_query = searcher(urlencode({"q": "tables", "after": first["next_cursor"]}))
    assert other_query.status_code == 400
    assert other_query.json()["error"]["code"] == "invalid_cursor"
    for cursor in ("nonsense", "srch_!!!", "srch_MHxhYmM"):
        bad = searcher(urlencode({"q": "tide", "after": cursor}))
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "after"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("", "q"),
        ("x=1", "x"),
        ("q=tide&q=tables", "q"),
        ("q=tide&limit=0", "limit"),
        ("q=tide&limit=abc", "limit"),
        ("q=tide&limit=101", "limit"),
        ("q=tide&order=rank", "order"),
    ],
)
def test_it_refuses_bad_parameters_in_the_envelope(
    transcribed: Transcribed, searcher: Searcher, query: str, param: str
) -> None:
    response = searcher(query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


HOSTILE_WITHOUT_WORDS = ['"', '""', "*", "-", "()", "(*", "^", ":", "' ;", "\u200b", "…"]
HOSTILE_WITH_WORDS = [
    "NEAR(",
    "NEAR(tide tables",
    "tide*",
    '"tide',
    "tide OR",
    "-tide",
    "tide AND (",
    "text:tide",
    "tide'; DROP TABLE voxhelm_search_segment; --",
    "{tide}",
    "tide ^2",
    "ñame & tide | !x <-> y:*",
]


def test_hostile_queries_are_words_or_a_clean_400(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    transcribed([(0.0, "The tide tables are printed near the door.")])
    for query in HOSTILE_WITHOUT_WORDS:
        response = searcher(urlencode({"q": query}))
        assert response.status_code == 400, (query, response.content)
        assert response.json()["error"]["param"] == "q"
    for query in HOSTILE_WITH_WORDS:
        response = searcher(urlencode({"q": query}))
        assert response.status_code == 200, (query, response.content)
    # The operators mean nothing: "near" and "or" are words to find like any other.
    assert len(hits(searcher, "NEAR(tide")) == 1
    assert hits(searcher, "tide OR") == []
    assert IndexedSegment.objects.count() == 1  # and nothing was dropped


def test_a_nul_a_very_long_query_and_too_many_terms_are_refused(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    for query in ("tide\x00", "a" * 501, " ".join(f"w{n}" for n in range(17))):
        response = searcher(urlencode({"q": query}))
        assert response.status_code == 400, response.content
        assert response.json()["error"]["param"] == "q"
    assert searcher("q=tide%00").status_code == 400
    assert searcher(urlencode({"q": "tide " * 99})).status_code == 200  # one term, repeated


def test_a_snippet_is_escaped_html(transcribed: Transcribed, searcher: Searcher) -> None:
    transcribed([(0.0, 'Owls & "mice" <b>hunt</b> at 3 < 4 \ue000o\'clock.')])
    snippet = hits(searcher, "owls")[0]["snippet"]
    assert "<mark>Owls</mark>" in snippet
    assert "<b>" not in snippet and "&lt;" in snippet and "&amp;" in snippet
    assert "\ue000" not in snippet and "o&#x27;clock" in snippet


def test_it_needs_a_producer_token(client: Client, search_config: Config, db: None) -> None:
    response = client.get("/v1/search?q=tide")
    assert response.status_code == 401 and "error" in response.json()


def test_the_index_follows_a_changed_transcript_and_a_deleted_job(
    transcribed: Transcribed, searcher: Searcher, client: Client, search_config: Config
) -> None:
    job_id = transcribed([(0.0, "A storm over the estuary."), (4.0, "Boats came home.")])
    assert [hit["start"] for hit in hits(searcher, "estuary")] == [0.0]
    job = Job.objects.get(pk=job_id)
    store_transcript(
        job, [(0.0, "A storm over the river mouth."), (4.0, "Boats came home.")], search_config
    )
    transcript_changed.send(sender=Job, job=job)  # as a correction announces itself
    assert hits(searcher, "estuary") == []
    assert [hit["start"] for hit in hits(searcher, '"river mouth"')] == [0.0]
    deleted = client.delete(f"/v1/jobs/{job_id}", headers={"Authorization": "Bearer test-token"})
    assert deleted.status_code == 200
    assert hits(searcher, "boats") == []
    assert IndexedSegment.objects.filter(job_id=job_id).count() == 0


def test_a_job_without_transcript_json_is_found_by_its_text(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    job_id = transcribed([(2.0, "Only plain text was asked for, about otters.")])
    Job.objects.get(pk=job_id).artifacts.all().delete()
    transcript_changed.send(sender=Job, job=Job.objects.get(pk=job_id))
    assert [(hit["job_id"], hit["start"]) for hit in hits(searcher, "otters")] == [(job_id, 0.0)]


def test_the_migration_indexes_jobs_that_succeeded_before_it(
    transcribed: Transcribed, searcher: Searcher
) -> None:
    job_id = transcribed([(0.0, "Before the index."), (6.5, "A kingfisher on the jetty.")])
    call_command("migrate", "voxhelm_search", "zero", verbosity=0)
    tables = connection.introspection.table_names()
    assert "voxhelm_search_segment" not in tables
    call_command("migrate", "voxhelm_search", verbosity=0)
    found = hits(searcher, "kingfisher")
    assert [(hit["job_id"], hit["start"]) for hit in found] == [(job_id, 6.5)]
    assert "<mark>kingfisher</mark>" in found[0]["snippet"]

"""The console's search page in-process: the operator's own transcripts only, hostile
queries answered on the page, pages of hits, sign-in required."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import User
from django.test import Client

from tests.console.conftest import OPERATOR
from tests.search.conftest import Segment, store_transcript
from voxhelm.config import Config
from voxhelm.console.operators import bootstrap_operator
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.signals import transcript_changed


def finished(producer: str, segments: list[Segment], config: Config, name: str) -> Job:
    job = Job.objects.create(
        producer=producer,
        request_fingerprint="x",
        input_data={"kind": "url", "url": f"https://media.example.com/{name}"},
        state=JobState.SUCCEEDED,
    )
    store_transcript(job, segments, config)
    transcript_changed.send(sender=Job, job=job)
    return job


def hit_links(page: str) -> list[str]:
    return re.findall(r'class="hit-link" href="([^"]+)"', page)


def test_it_finds_only_the_operators_own_transcripts(
    operator_client: Client, console_config: Config, make_client: Any
) -> None:
    mine = finished(
        f"operator:{OPERATOR}",
        [(0.0, "Intro."), (7.25, "Otters <3 the river.")],
        console_config,
        "mine.mp3",
    )
    finished("operator:lena", [(0.0, "Otters everywhere.")], console_config, "lena.mp3")
    finished("archive", [(0.0, "Otters in the archive.")], console_config, "api.mp3")
    page = operator_client.get("/search", {"q": "otters"}).content.decode()
    assert hit_links(page) == [f"/transcripts/{mine.pk}#t=7.250"]
    assert "mine.mp3" in page and "at 0:07" in page
    assert "<mark>Otters</mark> &lt;3 the river." in page
    bootstrap_operator("lena", "another long password")
    lena = make_client(User.objects.get(username="lena"))
    assert "lena.mp3" in lena.get("/search", {"q": "otters"}).content.decode()


def test_a_query_without_words_is_explained_on_the_page(
    operator_client: Client, console_config: Config
) -> None:
    for query in ('"', "*", "-", "a\x00b", "x" * 600):
        response = operator_client.get("/search", {"q": query})
        assert response.status_code == 200
        assert 'role="alert"' in response.content.decode(), query
    empty = operator_client.get("/search", {"q": "nothing here"}).content.decode()
    assert "No transcript holds “nothing here”" in empty
    blank = operator_client.get("/search").content.decode()
    assert 'role="alert"' not in blank and 'role="status"' not in blank


def test_more_results_page_on(operator_client: Client, console_config: Config) -> None:
    segments: list[Segment] = [(float(n), f"Tide report number {n}.") for n in range(25)]
    finished(f"operator:{OPERATOR}", segments, console_config, "tides.mp3")
    first = operator_client.get("/search", {"q": "tide"}).content.decode()
    assert len(hit_links(first)) == 20
    more = re.search(r'href="\?q=tide&amp;after=([^"]+)">More results', first)
    assert more is not None
    second = operator_client.get("/search", {"q": "tide", "after": more.group(1)}).content
    assert len(hit_links(second.decode())) == 5 and b"More results" not in second
    assert set(hit_links(first)).isdisjoint(hit_links(second.decode()))


def test_it_needs_a_signed_in_operator(client: Client, console_config: Config, db: None) -> None:
    response = client.get("/search", {"q": "tide"})
    assert response.status_code == 302 and response["Location"].startswith("/?next=/search")

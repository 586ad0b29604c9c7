"""``GET /v1/search``: the caller's transcript segments that match a query, best first."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, JsonResponse, QueryDict
from pydantic import BaseModel, Field

from voxhelm.api.decorators import api_view, principal
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Operation, parameter
from voxhelm.jobs import listing
from voxhelm.jobs.downloads import source_name
from voxhelm.jobs.models import Job
from voxhelm.search.query import MAX_QUERY_CHARS, Hit, parse_query, search

PARAMETERS = ("q", "limit", "after")
"""Every query parameter ``GET /v1/search`` takes; any other is a 400."""


class SearchHit(BaseModel):
    """A segment of one of the caller's transcripts that holds every term of the query."""

    object: Literal["search.hit"] = "search.hit"
    job_id: str
    start: float = Field(description="Where the segment starts in the recording, in seconds.")
    end: float
    speaker: str | None = Field(description="The segment's speaker label, if diarized.")
    text: str = Field(description="The segment's whole text.")
    snippet: str = Field(
        description="HTML: the text around the matches, escaped, each match in <mark>."
    )
    source_name: str | None = Field(description="The name of the job's upload or URL file.")


class SearchList(BaseModel):
    """A page of search hits, as OpenAI lists are."""

    object: Literal["list"] = "list"
    data: list[SearchHit]
    has_more: bool
    next_cursor: str | None = Field(
        description="Pass as 'after' (with the same q) for the next page; null on the last."
    )


PARAMETER_DOCS = [
    parameter(
        "q",
        "query",
        {"type": "string", "maxLength": MAX_QUERY_CHARS},
        'Words and "quoted phrases"; a segment matches when it holds them all.',
        required=True,
    ),
    parameter(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": listing.MAX_LIMIT, "default": 20},
    ),
    parameter("after", "query", {"type": "string"}, "The next_cursor of the page before."),
]


def _given(query: QueryDict) -> dict[str, str]:
    given: dict[str, str] = {}
    for name in query:
        if name not in PARAMETERS:
            raise invalid_request(
                f"Unknown query parameter '{name}'. Accepted: {', '.join(PARAMETERS)}.",
                param=name,
                code="unknown_parameter",
            )
        values = query.getlist(name)
        if len(values) > 1:
            raise invalid_request(f"'{name}' was given more than once.", param=name)
        given[name] = str(values[0])
    if "q" not in given:
        raise invalid_request("'q' (the words to search for) is required.", param="q")
    return given


def represent(hits: list[Hit]) -> list[SearchHit]:
    jobs = Job.objects.in_bulk({hit.job_id for hit in hits})
    # A job deleted since the search read its segment has no source name.
    names = {pk: source_name(job) for pk, job in jobs.items()}
    return [
        SearchHit(
            job_id=str(hit.job_id),
            start=hit.start,
            end=hit.end,
            speaker=hit.speaker or None,
            text=hit.text,
            snippet=hit.snippet_html(),
            source_name=names.get(hit.job_id) or None,
        )
        for hit in hits
    ]


@Operation(
    "/v1/search",
    "get",
    "Search the caller's transcripts: the segments that hold every word, best first",
    "jobs",
    responses={200: SearchList},
    errors=(400, 401, 500),
    parameters=PARAMETER_DOCS,
)
@api_view(["GET"], body="none")
def search_transcripts(request: HttpRequest) -> JsonResponse:
    given = _given(request.GET)
    query = parse_query(given["q"])
    limit = listing.parse_limit(given["limit"]) if "limit" in given else listing.DEFAULT_LIMIT
    results = search(principal(request), query, limit=limit, after=given.get("after") or None)
    body = SearchList(
        data=represent(results.hits), has_more=results.has_more, next_cursor=results.next_cursor
    )
    return JsonResponse(body.model_dump(mode="json"))

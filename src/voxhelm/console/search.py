"""The console's transcript search: a box, the hits with their snippets, each a link that
opens the transcript playing from its segment (``/transcripts/<id>#t=<start>``)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from voxhelm.console import listing
from voxhelm.console.operators import producer_for
from voxhelm.console.views import operator_view
from voxhelm.errors import InvalidInput
from voxhelm.jobs.models import Job
from voxhelm.search.query import Hit, Results, parse_query, search

HITS_PER_PAGE = 20


@dataclass(frozen=True)
class HitView:
    name: str
    at: str  # "1:02"
    href: str
    snippet: SafeString
    speaker: str


def _views(hits: list[Hit]) -> list[HitView]:
    jobs = Job.objects.in_bulk({hit.job_id for hit in hits})
    return [
        HitView(
            name=listing.source_name(jobs[hit.job_id]),
            at=listing.clock(hit.start),
            href=f"{reverse('console:transcript', args=[hit.job_id])}#t={hit.start:.3f}",
            # Escaped text with <mark> around the matches (search.query.Hit).
            snippet=mark_safe(hit.snippet_html()),  # noqa: S308
            speaker=hit.speaker,
        )
        for hit in hits
        if hit.job_id in jobs  # else deleted since the search read its segments
    ]


@operator_view(["GET"])
def search_page(request: HttpRequest) -> HttpResponse:
    """``/search?q=…``: the operator's transcripts that hold the words."""
    text = request.GET.get("q", "")
    results: Results | None = None
    error = ""
    if text.strip():
        try:
            query = parse_query(text)
            results = search(
                producer_for(request.user),
                query,
                limit=HITS_PER_PAGE,
                after=request.GET.get("after") or None,
            )
        except InvalidInput as exc:
            error = exc.message
    context = {
        "q": text[:500],
        "error": error,
        "searched": results is not None,
        "hits": _views(results.hits) if results else [],
        "next_cursor": results.next_cursor if results else None,
        "paged": bool(request.GET.get("after")),
    }
    return render(request, "console/search.html", context)

"""Every route states its body rule, so the edge can cap and check a body before Django reads it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import make_config
from voxhelm.console.assets import static_prefix
from voxhelm.edge.bodies import NO_BODY, UNKNOWN_API, body_cap, carries_body, rule_for
from voxhelm.edge.rules import BodyRule, rule_of

JOB = "00000000-0000-4000-8000-000000000000"


def patterns(resolver: URLResolver | None = None) -> Iterator[URLPattern]:
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from patterns(entry)
        else:
            yield entry


def test_every_route_declares_its_body_rule() -> None:
    missing = [str(p.pattern) for p in patterns() if rule_of(p.callback) is None]
    assert missing == []


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/v1/audio/transcriptions", BodyRule("producer", "upload")),
        ("/v1/audio/translations", BodyRule("producer", "upload")),
        ("/v1/uploads", BodyRule("producer", "staged")),
        ("/v1/jobs", BodyRule("producer", "json")),
        ("/v1/audio/speech", BodyRule("producer", "json")),
        ("/v1/internal/work/claim", BodyRule("worker", "json")),
        (f"/v1/internal/work/{JOB}/complete", BodyRule("worker", "result")),
        ("/v1/health", BodyRule("any", "none")),
        ("/v1/health/live", BodyRule("none", "none")),
        ("/v1/openapi.json", BodyRule("none", "none")),
        ("/metrics", BodyRule("metrics", "none")),
        ("/", BodyRule("operator", "upload", visitor_body="sign_in")),
        ("/jobs", BodyRule("operator", "none")),
        ("/v1/no/such/path", UNKNOWN_API),
        ("/no-such-page", NO_BODY),
        ("/static/console/console.css", NO_BODY),
    ],
)
def test_a_path_resolves_to_its_views_rule(path: str, rule: BodyRule) -> None:
    assert rule_for(path, static_prefix()) == rule


def test_json_and_form_caps_stay_in_memory_and_uploads_follow_the_settings() -> None:
    config = make_config(
        VOXHELM_MAX_UPLOAD_BYTES="1000", VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES="2000"
    )
    in_memory = 2_621_440  # FILE_UPLOAD_MAX_MEMORY_SIZE: below it Django spools nothing
    assert max(body_cap(kind, config) for kind in ("none", "sign_in", "form", "json")) < in_memory
    assert body_cap("upload", config) == 1000 + 1024 * 1024
    assert body_cap("staged", config) == 2000 + 1024 * 1024


@pytest.mark.parametrize(
    ("headers", "carries"),
    [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b"12")], True),
        ([(b"Transfer-Encoding", b"chunked")], True),
        ([(b"content-length", b"x")], True),  # a malformed length is no promise of nothing
    ],
)
def test_it_sees_whether_a_request_carries_a_body(
    headers: list[tuple[bytes, bytes]], carries: bool
) -> None:
    scope: dict[str, Any] = {"headers": headers}
    assert carries_body(scope) is carries

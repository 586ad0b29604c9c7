"""The access log: one structured line per request, in text or JSON, never with a token."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from tests.conftest import PRODUCER_TOKEN, WORKER_TOKEN
from voxhelm.logformat import JsonFormatter, TextFormatter, log_event


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="voxhelm.access")
    return caplog


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "voxhelm.access"]


def test_it_logs_one_line_per_request_with_the_producer(
    configure: Any, client: Any, access: pytest.LogCaptureFixture
) -> None:
    response = client.get(
        "/v1/health?token=leaky",
        headers={"Authorization": f"Bearer {PRODUCER_TOKEN}", "X-Request-ID": "req-42"},
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-42"
    (record,) = lines(access)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["logger"] == "voxhelm.access"
    assert entry["request_id"] == "req-42"
    assert entry["method"] == "GET"
    assert entry["path"] == "/v1/health"  # never the query string
    assert entry["route"] == "/v1/health"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["producer"] == "archive"
    text = TextFormatter().format(record)
    assert "request_id=req-42" in text
    assert "producer=archive" in text
    for formatted in (json.dumps(entry), text):
        assert PRODUCER_TOKEN not in formatted
        assert "leaky" not in formatted


def test_it_logs_refused_and_unknown_requests_without_their_tokens(
    configure: Any, client: Any, access: pytest.LogCaptureFixture
) -> None:
    client.get("/v1/health", headers={"Authorization": "Bearer not-a-token"})
    client.get("/v1/no-such-thing", headers={"Authorization": f"Bearer {WORKER_TOKEN}"})
    client.get("/v1/health", headers={"X-Request-ID": "bad id with spaces"})
    first, second, third = (json.loads(JsonFormatter().format(r)) for r in lines(access))
    assert (first["status"], first["route"]) == (401, "/v1/health")
    assert "producer" not in first
    assert (second["status"], second["route"]) == (404, "unmatched")
    assert third["request_id"] != "bad id with spaces"
    assert len(third["request_id"]) == 16
    for record in lines(access):
        formatted = JsonFormatter().format(record) + TextFormatter().format(record)
        assert "not-a-token" not in formatted
        assert WORKER_TOKEN not in formatted


def test_a_worker_is_named_as_a_worker(
    configure: Any, client: Any, access: pytest.LogCaptureFixture
) -> None:
    client.get("/v1/health", headers={"Authorization": f"Bearer {WORKER_TOKEN}"})
    entry = json.loads(JsonFormatter().format(lines(access)[0]))
    assert entry["worker"] == "atlas"
    assert "producer" not in entry


def test_the_json_format_keeps_exceptions_on_one_line() -> None:
    logger = logging.getLogger("voxhelm.test")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(
            "voxhelm.test", logging.ERROR, __file__, 1, "failed %s", ("here",), None
        )
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed here"
    assert "ValueError: boom" in entry["exception"]


def test_fields_named_like_the_envelope_do_not_replace_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("voxhelm.test")
    with caplog.at_level(logging.INFO, logger="voxhelm.test"):
        log_event(logger, "job finished", {"message": "x", "job_id": "abc", "skipped": None})
    entry = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert entry["message"] == "job finished"
    assert entry["field_message"] == "x"
    assert entry["job_id"] == "abc"
    assert "skipped" not in entry


def test_the_json_format_is_chosen_by_the_setting(configure: Any) -> None:
    assert configure(VOXHELM_LOG_FORMAT="json").http.log_format == "json"
    assert configure().http.log_format == "text"
    config = configure(VOXHELM_LOG_FORMAT="xml")
    assert [p.name for p in config.problems] == ["VOXHELM_LOG_FORMAT"]


FORGERIES = (
    "\n2020-01-01 00:00:00,000 ERROR voxhelm.api FORGED",
    "\r2020-01-01 00:00:00,000 ERROR FORGED",
    "\x1b[2K\x1b[1AFORGED",
    "\u2028FORGED",
    "\u2029FORGED",
    "\x85FORGED",
    "\x0bFORGED",
    "\x0cFORGED",
    "\x1cFORGED",
    "\x00\x7f\x9bFORGED",
    "\u202egnp.exe",
    "\u2066FORGED\u2069",
)


def record(message: str, *args: object, **fields: object) -> logging.LogRecord:
    entry = logging.getLogger("voxhelm.test").makeRecord(
        "voxhelm.test", logging.WARNING, __file__, 1, message, args, None
    )
    if fields:
        entry.voxhelm_fields = fields  # type: ignore[attr-defined]
    return entry


def one_clean_line(text: str) -> bool:
    """One line for every reader (``splitlines`` honours every Unicode line boundary), with
    nothing left that a terminal acts on or that reorders what is shown."""
    return len(text.splitlines()) == 1 and all(ch.isprintable() or ch == " " for ch in text)


@pytest.mark.parametrize("forgery", FORGERIES)
def test_the_text_format_escapes_what_could_forge_a_line(forgery: str) -> None:
    for entry in (
        record(f"worker reports: {forgery}"),  # in the message itself
        record("worker reports: %s", forgery),  # in its arguments
        record("request", path=f"/v1/{forgery}", **{f"key{forgery}": "x"}),  # in the fields
    ):
        text = TextFormatter().format(entry)
        assert one_clean_line(text), repr(text)


def test_escapes_are_readable() -> None:
    text = TextFormatter().format(record("a\nb\tc\x1b[31m\u2028", path="/x\ny"))
    assert text.endswith('voxhelm.test a\\nb\\tc\\u001b[31m\\u2028 path="/x\\ny"')


def test_a_traceback_still_follows_its_escaped_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        entry = record("failed for %s", "evil\nFORGED", job_id="j1")
        entry.exc_info = sys.exc_info()
    head, *trace = TextFormatter().format(entry).split("\n")
    assert head.endswith("failed for evil\\nFORGED job_id=j1")
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-1] == "ValueError: boom"


@pytest.mark.parametrize("forgery", FORGERIES)
def test_the_json_format_keeps_every_line_boundary_escaped(forgery: str) -> None:
    line = JsonFormatter().format(record("worker reports: %s", forgery, path=forgery))
    assert one_clean_line(line), repr(line)
    entry = json.loads(line)
    assert entry["message"] == f"worker reports: {forgery}"
    assert entry["path"] == forgery

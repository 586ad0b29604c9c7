"""Hostile JSON, hostile worker fields and forged log lines, against the real server.

JSON: every endpoint that reads a JSON body (producer and worker) gets documents nested far
past any real request (arrays, objects, both mixed; 100, 30,000 and a million levels; at the
top and inside the fields each endpoint reads), numbers no field can hold, lone surrogates
and very wide documents. Each must be a quick 4xx in the error envelope; the nested ones
and the unholdable numbers a 400 ``invalid_json``. The multipart endpoints get the same
text in their form fields (no form field is read as JSON, so it must stay a plain 4xx).

Worker fields: a heartbeat with a 100 KB hostname or 20,000 running job ids, and every other
worker field over its documented limit (docs/remote-workers.md), is a 400 and nothing of it
reaches the database.

Logs: a worker's ``error_detail``, a request path and a hostname carrying newlines, carriage
returns, ANSI escapes and Unicode line separators never start a line of their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import PRODUCER_TOKEN, WORKER_TOKEN
from tests.hardening.conftest import Figures, Target
from tests.hardening.test_ssrf import wait_for_job

pytestmark = pytest.mark.hardening

MISSING_JOB = str(uuid.uuid4())  # the worker job endpoints read the body before the job
PRODUCER_JSON = (
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/v1/audio/speech",
    "/v1/jobs",
)
WORKER_JSON = (
    "/v1/internal/workers/heartbeat",
    "/v1/internal/work/claim",
    f"/v1/internal/work/{MISSING_JOB}/heartbeat",
    f"/v1/internal/work/{MISSING_JOB}/complete",
    f"/v1/internal/work/{MISSING_JOB}/fail",
)
MULTIPART = ("/v1/audio/transcriptions", "/v1/audio/translations")  # /v1/uploads takes a file only
# A body cap in front of the parser (413) refuses a big body as cleanly as the parser would.
CAPPED_BODY = 64 * 1024
MAX_ANSWER_SECONDS = 2.0
READ_FIELDS = (  # the fields the JSON endpoints read, between them
    "input",
    "output",
    "diarization",
    "context",
    "url",
    "capabilities",
    "progress",
    "artifacts",
    "result_metadata",
    "running_job_ids",
)


def arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def mixed(depth: int) -> bytes:
    return b'[{"a":' * (depth // 2) + b"1" + b"}]" * (depth // 2)


def in_fields(value: bytes) -> bytes:
    """An object whose every field that some JSON endpoint reads holds ``value``."""
    return b"{" + b",".join(b'"%s":%s' % (name.encode(), value) for name in READ_FIELDS) + b"}"


NESTED = {
    "arrays-30k": arrays(30_000),
    "objects-30k": objects(30_000),
    "mixed-30k": mixed(30_000),
    "unclosed-1M": b"[" * 1_000_000,
    "objects-200k-unclosed": b'{"a":' * 200_000,
    "in-fields-30k": in_fields(mixed(30_000)),
    # Under Python's recursion limit, so only an explicit depth bound refuses it.
    "in-fields-100": in_fields(objects(100)),
}
UNHOLDABLE = {
    "huge-exponent": in_fields(b"1e999999"),
    "negative-huge-exponent": in_fields(b"-1e999999"),
    "nan-literal": in_fields(b"NaN"),
    "infinity-literal": in_fields(b"Infinity"),
    "integer-of-4000-digits": b'{"concurrency":%s,"max_jobs":1,"capabilities":{}}' % (b"9" * 4000),
    "integer-of-30-digits": b'{"concurrency":%s,"speed":1,"capabilities":{}}' % (b"9" * 30),
    "lone-surrogate": b'{"model":"whisper-1","url":"https://media.example.com/\\ud800.mp3",'
    b'"prompt":"\\udfff","input":"\\ud800","voice":"x","hostname":"\\ud800"}',
    # SQLite stores a NUL, PostgreSQL cannot: refused everywhere, as JSON no column holds.
    "nul-escape": b'{"model":"whisper-1","url":"https://media.example.com/a\\u0000.mp3",'
    b'"prompt":"\\u0000","input":"hi\\u0000","voice":"x","hostname":"box\\u0000"}',
}
WIDE = {
    "array-of-200k": b"[" + b"0," * 199_999 + b"0]",
    "fields-of-200k": in_fields(b"[" + b'"x",' * 199_999 + b'"x"]'),
    # 200k short ids (1.4 MB): under Django's 2.5 MiB body limit, so the fields are read.
    "running-ids-200k": json.dumps({"running_job_ids": [str(i) for i in range(200_000)]}).encode(),
    "strings-of-500KB": json.dumps(
        {
            "model": "m" * 500_000,
            "url": "https://media.example.com/" + "a" * 500_000,
            "hostname": "h" * 500_000,
            "capabilities": {"models": ["m" * 500_000]},
        }
    ).encode(),
}


@dataclass
class Answer:
    path: str
    status: int
    code: str | None
    seconds: float


def post(client: httpx.Client, path: str, body: bytes, token: str) -> Answer:
    started = time.monotonic()
    response = client.post(
        path,
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return Answer(path, response.status_code, error_code(response), time.monotonic() - started)


def error_code(response: httpx.Response) -> str | None:
    """The envelope's code of an error answer; None for a success."""
    if response.status_code < 400:
        return None
    assert response.headers["content-type"].startswith("application/json"), response.text
    return str(response.json()["error"]["code"])


def every_json_endpoint(target: Target, body: bytes) -> list[Answer]:
    with target.client(None) as client:
        return [post(client, path, body, PRODUCER_TOKEN) for path in PRODUCER_JSON] + [
            post(client, path, body, WORKER_TOKEN) for path in WORKER_JSON
        ]


def every_form(target: Target, text: str) -> list[Answer]:
    """``text`` in every form field of the multipart endpoints (beside a small file)."""
    fields = {
        name: text
        for name in ("model", "prompt", "language", "response_format", "hotwords", "diarization")
    }
    fields["chunking_strategy"] = text
    answers = []
    with target.client() as client:
        for path in MULTIPART:
            started = time.monotonic()
            response = client.post(
                path, data=fields, files={"file": ("a.wav", b"RIFF" + b"\0" * 64, "audio/wav")}
            )
            seconds = time.monotonic() - started
            answers.append(Answer(path, response.status_code, error_code(response), seconds))
    return answers


def as_expected(answer: Answer, body: bytes, expect: str) -> bool:
    """``expect``: an error code (a 400 with it), "4xx", or "no-5xx"."""
    if len(body) > CAPPED_BODY and (answer.status, answer.code) == (413, "payload_too_large"):
        return True
    if expect == "no-5xx":
        return answer.status < 500
    if expect == "4xx":
        return 400 <= answer.status < 500
    return (answer.status, answer.code) == (400, expect)


def check(
    answers: list[Answer], body: bytes, expect: str, figures: Figures, name: str, kind: str
) -> None:
    wrong = [a for a in answers if not as_expected(a, body, expect)]
    slow = [a for a in answers if a.seconds > MAX_ANSWER_SECONDS]
    figures.bump("input.probes", len(answers))
    figures.bump("input.probes_answered_5xx", sum(a.status >= 500 for a in answers))
    figures.worst(f"input.{kind}_slowest_answer_seconds", max(a.seconds for a in answers))
    assert not wrong, f"{name}: {[(a.path, a.status, a.code) for a in wrong]}"
    assert not slow, f"{name}: {[(a.path, round(a.seconds, 2)) for a in slow]}"


@pytest.mark.parametrize("name", list(NESTED))
def test_deeply_nested_json_is_a_400_invalid_json_everywhere(
    target: Target, figures: Figures, name: str
) -> None:
    body = NESTED[name]
    check(every_json_endpoint(target, body), body, "invalid_json", figures, name, "nested")
    # No form field is parsed as JSON: the same text there is plain text (an upload refuses
    # the fields it does not know with a 400), never a 500.
    check(every_form(target, body[:60_000].decode()), b"", "no-5xx", figures, name, "form")
    assert "RecursionError" not in target.server.log()


@pytest.mark.parametrize("name", list(UNHOLDABLE))
def test_numbers_and_strings_no_field_can_hold_are_a_400_invalid_json(
    target: Target, figures: Figures, name: str
) -> None:
    body = UNHOLDABLE[name]
    check(every_json_endpoint(target, body), body, "invalid_json", figures, name, "number")


@pytest.mark.parametrize("name", list(WIDE))
def test_very_wide_json_is_a_quick_4xx(target: Target, figures: Figures, name: str) -> None:
    body = WIDE[name]
    check(every_json_endpoint(target, body), body, "4xx", figures, name, "wide")


# -- worker fields -----------------------------------------------------------------------------

BASELINE = {
    "hostname": "hardening-box",
    "concurrency": 2,
    "running_job_ids": [MISSING_JOB],
    "capabilities": {"backends": ["faster_whisper"], "models": ["tiny.en"]},
}
OVER_THE_LIMITS = {
    "hostname-of-100KB": {"hostname": "h" * 100_000},
    "hostname-of-256": {"hostname": "h" * 256},
    "hostname-with-a-newline": {"hostname": "box\nFORGED-HOSTNAME"},
    "hostname-with-an-escape": {"hostname": "box\x1b[2J"},
    "running-ids-20000": {"running_job_ids": [str(uuid.uuid4()) for _ in range(20_000)]},
    "running-id-of-10KB": {"running_job_ids": ["j" * 10_000]},
    "concurrency-of-a-million": {"concurrency": 1_000_000},
    "models-10000": {"capabilities": {"models": [f"m{i}" for i in range(10_000)]}},
    "model-name-of-10KB": {"capabilities": {"models": ["m" * 10_000]}},
    "backend-with-a-newline": {"capabilities": {"backends": ["faster_whisper\nFORGED"]}},
    "embedding-models-10000": {
        "capabilities": {"diarization": {"embedding_models": ["e"] * 10_000}}
    },
}


def worker_row(target: Target) -> tuple[Any, ...]:
    (row,) = target.query(
        "SELECT hostname, concurrency, running_job_ids, capabilities"
        " FROM voxhelm_workers_worker WHERE worker_id = 'atlas'"
    )
    return row


def test_worker_fields_over_their_limits_are_refused_and_nothing_is_stored(
    target: Target, figures: Figures
) -> None:
    refused: dict[str, tuple[int, str]] = {}
    with target.client(WORKER_TOKEN) as worker:
        assert worker.post("/v1/internal/workers/heartbeat", json=BASELINE).status_code == 200
        stored = worker_row(target)
        for name, fields in OVER_THE_LIMITS.items():
            response = worker.post("/v1/internal/workers/heartbeat", json={**BASELINE, **fields})
            refused[name] = (response.status_code, error_code(response))
            assert worker_row(target) == stored, name
    assert stored[0] == "hardening-box"
    # A body over the route's cap (256 KiB) is refused at the edge before it is parsed.
    over_cap = {"running-ids-20000"}
    wrong = {
        name: got
        for name, got in refused.items()
        if got != ((413, "payload_too_large") if name in over_cap else (400, "invalid_request"))
    }
    assert not wrong, wrong
    figures.add("input.worker_heartbeats_over_limits_refused", len(refused))
    figures.add("input.worker_row_bytes_after_a_beat", sum(len(str(value)) for value in stored))


LEASE = {"lease_token": "t" * 43}


def artifact(name: str) -> dict[str, Any]:
    """A manifest entry that is well-formed but for what a case changes."""
    return {
        "name": name,
        "kind": "source",
        "format": "",
        "storage_backend": "filesystem",
        "storage_key": f"jobs/{MISSING_JOB}/attempt-1/{name[:100]}",
        "content_type": "audio/wav",
        "size_bytes": 1,
        "sha256": "0" * 64,
        "exposed": False,
    }


JOB_REQUESTS_OVER_THE_LIMITS = {
    "heartbeat": {
        "phase-of-100KB": {**LEASE, "progress": {"phase": "p" * 100_000}},
        "message-of-100KB": {**LEASE, "progress": {"message": "m" * 100_000}},
        "lease-token-of-100KB": {"lease_token": "t" * 100_000},
    },
    "fail": {
        "error-detail-of-100KB": {**LEASE, "retryable": False, "error_detail": "e" * 100_000},
        "error-code-of-10KB": {
            **LEASE,
            "retryable": False,
            "error_detail": "x",
            "error_code": "c" * 10_000,
        },
    },
    "complete": {
        "artifacts-1000": {
            **LEASE,
            "result_text": "",
            "artifacts": [artifact(f"a{i}.wav") for i in range(1000)],
        },
        "artifact-name-of-10KB": {
            **LEASE,
            "result_text": "",
            "artifacts": [artifact("n" * 10_000)],
        },
        "storage-key-of-100KB": {
            **LEASE,
            "result_text": "",
            "artifacts": [{**artifact("source.wav"), "storage_key": "k" * 100_000}],
        },
    },
    "claim": {
        "capabilities-10000": {"capabilities": {"output_formats": ["json"] * 10_000}},
        "max-jobs-of-a-million": {"capabilities": {}, "max_jobs": 1_000_000},
    },
}


def test_job_requests_over_their_limits_are_refused_before_any_lookup(target: Target) -> None:
    """A random job id: a 400 (not the 404/409 of a well-formed request) shows the fields
    were refused by validation, before anything was looked up or stored."""
    wrong = {}
    with target.client(WORKER_TOKEN) as worker:
        for action, cases in JOB_REQUESTS_OVER_THE_LIMITS.items():
            path = (
                "/v1/internal/work/claim"
                if action == "claim"
                else f"/v1/internal/work/{MISSING_JOB}/{action}"
            )
            for name, body in cases.items():
                response = worker.post(path, json=body)
                if (response.status_code, error_code(response)) != (400, "invalid_request"):
                    wrong[name] = (response.status_code, error_code(response))
    assert not wrong, wrong


# -- forged log lines --------------------------------------------------------------------------

FORGERIES = (
    "\n{stamp} ERROR voxhelm.api FORGED-LF",
    "\r{stamp} ERROR voxhelm.api FORGED-CR",
    "\x1b[2K\x1b[1A{stamp} ERROR FORGED-ANSI",
    "\u2028{stamp} ERROR FORGED-LS",
    "\u2029{stamp} ERROR FORGED-PS",
    "\x85{stamp} ERROR FORGED-NEL",
    "\x0b{stamp} ERROR FORGED-VT",
    "\x1c{stamp} ERROR FORGED-FS",
)
STAMP = "2020-01-01 00:00:00,000"
FORGED = re.compile(r"^\s*(\x1b\[[0-9;]*[A-Za-z])*\s*(2020-01-01|FORGED)")


def hostile_text(prefix: str) -> str:
    return prefix + "".join(f.format(stamp=STAMP) for f in FORGERIES)


def forged_lines(log: str) -> list[str]:
    """Lines (split at every line boundary a reader might honour) that the attacker wrote."""
    return [line for line in log.splitlines() if FORGED.match(line)]


def lease_to_atlas(target: Target, job_id: str) -> str:
    """Hand a finished job to worker ``atlas`` as a claim would; the plaintext lease token.

    The server under attack runs jobs locally (remote_pull would starve the other suites),
    so the lease a claim would write is written into its database directly.
    """
    token = "hardening-lease-token"
    with sqlite3.connect(target.server.var_dir / "db.sqlite3", timeout=30) as db:
        changed = db.execute(
            "UPDATE voxhelm_jobs_job SET execution_mode = 'remote_pull', state = 'running',"
            " assigned_worker_id = 'atlas', lease_token_hash = ?, attempt_count = 1,"
            " max_attempts = 1, lease_expires_at = '2099-01-01 00:00:00', finished_at = NULL"
            " WHERE id = ?",
            (hashlib.sha256(token.encode()).hexdigest(), job_id.replace("-", "")),
        ).rowcount
    assert changed == 1
    return token


@pytest.fixture
def leased_job(target: Target) -> Iterator[str]:
    with target.client() as client:
        created = client.post(
            "/v1/jobs",
            json={
                "job_type": "transcribe",
                "input": {"kind": "url", "url": target.hostile("/to-file")},
            },
        )
        assert created.status_code == 201, created.text
        job = wait_for_job(client, created.json()["id"])
    yield job["id"]


def test_a_worker_error_detail_cannot_forge_log_lines(
    target: Target, leased_job: str, figures: Figures
) -> None:
    token = lease_to_atlas(target, leased_job)
    detail = hostile_text("disk full")
    with target.client(WORKER_TOKEN) as worker:
        response = worker.post(
            f"/v1/internal/work/{leased_job}/fail",
            json={"lease_token": token, "retryable": False, "error_detail": detail},
        )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "failed"
    log = target.server.log()
    reported = [line for line in log.splitlines() if f"job {leased_job}: worker atlas" in line]
    assert len(reported) == 1 and "FORGED-NEL" in reported[0], reported  # logged, on one line
    assert forged_lines(log) == []
    figures.add("input.log_forgeries_tried", len(FORGERIES))


def test_a_request_path_and_a_hostname_cannot_forge_log_lines(target: Target) -> None:
    path = "/v1/" + quote(hostile_text("nothing-here"), safe="")
    with target.client() as client:
        assert client.get(path).status_code == 404
    with target.client(WORKER_TOKEN) as worker:
        worker.post("/v1/internal/workers/heartbeat", json={"hostname": hostile_text("box")})
    log = target.server.log()
    assert "nothing-here" in log
    assert forged_lines(log) == []


def test_uvicorn_lines_go_through_the_escaping_formatter(target: Target) -> None:
    line = r"^\d{4}-\d\d-\d\d \S+ INFO uvicorn\.error Started server process"
    assert re.search(line, target.server.log(), re.M), "uvicorn's lines bypass the formatter"

"""Every endpoint x every kind of caller -> the expected status, on the real server; and no
credential ever reaches the server's log.

Callers: nobody, a wrong token, a producer, another producer, a worker, a disabled worker,
the metrics scraper, and a signed-in operator (session cookie, no bearer token).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import OTHER_PRODUCER_TOKEN, PRODUCER_TOKEN, WORKER_TOKEN, process_env
from tests.hardening.conftest import (
    DISABLED_WORKER_TOKEN,
    METRICS_TOKEN,
    WEBHOOK_SECRET,
    Figures,
    Target,
)
from tests.hardening.test_ssrf import wait_for_job

pytestmark = pytest.mark.hardening

BAD_TOKEN = "hardening-wrong-token-0123456789"
OPERATOR = "hardening-operator"
OPERATOR_PASSWORD = "hardening operator password"
CALLERS = ("none", "bad", "producer", "other", "worker", "disabled", "metrics", "operator")
TOKENS = {
    "bad": BAD_TOKEN,
    "producer": PRODUCER_TOKEN,
    "other": OTHER_PRODUCER_TOKEN,
    "worker": WORKER_TOKEN,
    "disabled": DISABLED_WORKER_TOKEN,
    "metrics": METRICS_TOKEN,
}


@dataclass(frozen=True)
class Row:
    """One endpoint: method, path, JSON body, and the status each caller must get."""

    method: str
    path: str
    expect: dict[str, int]
    body: Any = None


def producer_only(ok: int, other: int | None = None) -> dict[str, int]:
    """A producer endpoint: 401 for anything but a producer token."""
    expect = dict.fromkeys(CALLERS, 401)
    expect.update(producer=ok, other=ok if other is None else other)
    return expect


def worker_only(ok: int, disabled: int = 403) -> dict[str, int]:
    """A worker endpoint; a disabled worker may not claim, but may finish what it holds."""
    expect = dict.fromkeys(CALLERS, 401)
    expect.update(worker=ok, disabled=disabled)
    return expect


def console(ok: int, visitor: int = 302) -> dict[str, int]:
    """A console page: bearer tokens mean nothing there; visitors go to the sign-in page."""
    expect = dict.fromkeys(CALLERS, visitor)
    expect["operator"] = ok
    return expect


@dataclass
class Fixture:
    job: str  # a succeeded job of the producer
    clients: dict[str, httpx.Client]


def sign_in(target: Target) -> httpx.Client:
    import subprocess
    import sys

    env = process_env(target.server.var_dir.parent)
    env["VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD"] = OPERATOR_PASSWORD
    subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", "bootstrap-operator", "--username", OPERATOR],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    client = httpx.Client(base_url=target.url, timeout=60)
    page = client.get("/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        "/",
        data={"username": OPERATOR, "password": OPERATOR_PASSWORD, "csrfmiddlewaretoken": token[1]},
    )
    assert answer.status_code == 302, answer.text
    return client


@pytest.fixture(scope="module")
def callers(target: Target, speech_wav: bytes) -> Iterator[Fixture]:
    clients = {"none": httpx.Client(base_url=target.url, timeout=60)}
    for name, token in TOKENS.items():
        clients[name] = target.client(token)
    clients["operator"] = sign_in(target)
    # The disabled worker: known to the server (first heartbeat), then disabled by the
    # operator in the database (there is no API for it).
    beat = clients["disabled"].post("/v1/internal/workers/heartbeat", json={"worker_id": "boreas"})
    assert beat.status_code == 200, beat.text
    db = target.server.var_dir / "db.sqlite3"
    with sqlite3.connect(db, timeout=30) as conn:
        conn.execute("UPDATE voxhelm_workers_worker SET enabled = 0 WHERE worker_id = 'boreas'")
    created = clients["producer"].post(
        "/v1/jobs",
        json={
            "job_type": "transcribe",
            "input": {"kind": "url", "url": target.hostile("/speech.wav")},
        },
    )
    job = wait_for_job(clients["producer"], created.json()["id"])
    assert job["state"] == "succeeded", job
    yield Fixture(job["id"], clients)
    for client in clients.values():
        client.close()


def rows(job: str) -> list[Row]:
    missing = str(uuid.uuid4())
    everyone = dict.fromkeys(CALLERS, 200)
    health = dict.fromkeys(CALLERS, 401)
    health.update(producer=200, other=200, worker=200, disabled=200)
    metrics = dict.fromkeys(CALLERS, 401)
    metrics["metrics"] = 200
    lease = {"lease_token": "x" * 43}
    completion = {**lease, "result_text": "", "artifacts": []}
    failure = {**lease, "retryable": False, "error_detail": "x"}
    return [
        Row("GET", "/v1/health", health),
        Row("GET", "/v1/health/live", everyone),
        Row("GET", "/v1/openapi.json", everyone),
        Row("GET", "/v1/docs", everyone),
        Row("POST", "/v1/audio/transcriptions", producer_only(400), {}),
        Row("POST", "/v1/audio/translations", producer_only(400), {}),
        Row("POST", "/v1/audio/speech", producer_only(400), {}),
        Row("GET", "/v1/audio/voices", producer_only(200)),
        Row("POST", "/v1/uploads", producer_only(400), {}),
        Row("POST", "/v1/jobs", producer_only(400), {}),
        Row("GET", "/v1/jobs", producer_only(200)),
        Row("DELETE", f"/v1/jobs/{missing}", producer_only(404)),
        Row("GET", f"/v1/jobs/{job}", producer_only(200, 404)),
        Row("GET", f"/v1/jobs/{missing}", producer_only(404)),
        Row("POST", f"/v1/jobs/{job}/cancel", producer_only(409, 404)),
        Row("GET", f"/v1/jobs/{job}/artifacts/transcript.txt", producer_only(200, 404)),
        Row("GET", f"/v1/jobs/{job}/artifacts/source.wav", producer_only(404)),
        Row("GET", "/v1/models", producer_only(200)),
        Row("GET", "/v1/models/whisper-1", producer_only(200)),
        Row("POST", "/v1/internal/workers/heartbeat", worker_only(200), {}),
        Row("POST", "/v1/internal/work/claim", worker_only(204), {"capabilities": {}}),
        Row("POST", f"/v1/internal/work/{job}/heartbeat", worker_only(409, 409), lease),
        # Past authentication: an empty manifest is a 400, a job not leased to anyone a 404.
        Row("POST", f"/v1/internal/work/{job}/complete", worker_only(400, 400), completion),
        Row("POST", f"/v1/internal/work/{job}/fail", worker_only(404, 404), failure),
        Row("GET", "/metrics", metrics),
        Row("GET", "/", console(200, visitor=200)),
        Row("GET", "/jobs", console(200)),
        Row("GET", f"/transcripts/{job}", console(404)),  # a producer's job, not the operator's
        Row("GET", f"/transcripts/{job}/status", console(404)),
        Row("GET", f"/transcripts/{job}/audio", console(404)),
        Row("GET", f"/transcripts/{job}/artifacts/text", console(404)),
        Row("GET", f"/transcripts/{job}/delete", console(404)),
    ]


def test_every_endpoint_answers_every_caller_as_expected(
    target: Target, callers: Fixture, figures: Figures
) -> None:
    wrong = []
    cells = 0
    for row in rows(callers.job):
        for caller in CALLERS:
            client = callers.clients[caller]
            response = client.request(row.method, row.path, json=row.body, follow_redirects=False)
            cells += 1
            if response.status_code != row.expect[caller]:
                wrong.append(
                    (row.method, row.path, caller, row.expect[caller], response.status_code)
                )
            elif response.status_code == 401 and row.path.startswith("/v1/"):
                assert response.json()["error"]["type"] == "authentication_error"
                assert response.headers["WWW-Authenticate"] == "Bearer"
    assert wrong == [], "\n".join(map(str, wrong))
    figures.add("auth.endpoints", len(rows(callers.job)))
    figures.add("auth.callers", len(CALLERS))
    figures.add("auth.cells", cells)


def test_no_credential_reaches_the_log(target: Target, callers: Fixture, figures: Figures) -> None:
    # Credentials where careless code would log them: the query string and the body.
    for caller in ("producer", "bad"):
        callers.clients[caller].post(
            f"/v1/jobs?api_key={TOKENS[caller]}", json={"token": TOKENS[caller]}
        )
    log = target.server.log()
    session = callers.clients["operator"].cookies.get("sessionid") or ""
    csrf = callers.clients["operator"].cookies.get("csrftoken") or ""
    secrets = [*TOKENS.values(), OPERATOR_PASSWORD, WEBHOOK_SECRET, session, csrf]
    assert all(secrets)
    assert [secret for secret in secrets if secret in log] == []
    assert "archive" in log  # the producer's label is logged: the log was read at all
    figures.add("auth.secrets_in_log", 0)
    figures.add("auth.secrets_checked", len(secrets))

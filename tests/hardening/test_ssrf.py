"""SSRF through every URL entry point, end to end against a guarded server process.

Entry points: the sync ``url`` of ``POST /v1/audio/transcriptions``, a job's ``input.url``,
a job's ``callback_url`` (webhook delivery), known-speaker reference URLs, and the remote
worker's own download (``voxhelm.remote_worker.runner.materialize``, in-process). Each
attack is one of: a URL the policy refuses before any I/O (the shared corpus plus every
loopback/metadata encoding aimed at the canary's port), a name that resolves to a private or
metadata address, a name that rebinds between check and connect, or a hostile response
(oversized, endless, slow drip, gzip bomb, bad redirects).

Targets: every refusal is a 4xx (or a failed job with a code), a refused submission leaves no
job row, the server process connects to nothing outside loopback (its guard records every
attempt), the canary is never reached, and every abort ends within its deadline + 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_config
from tests.hardening.conftest import (
    ALLOWED_NAMES,
    DNS,
    DOWNLOAD_CAP,
    FETCH_TIMEOUT,
    WEBHOOK_TIMEOUT,
    Figures,
    Target,
    allowlist,
)
from tests.hardening.hostile import STANDIN_ADDRESS
from voxhelm import fetch
from voxhelm.errors import InvalidInput
from voxhelm.remote_worker.runner import materialize
from voxhelm.worker_protocol.messages import ClaimedJob, ClaimedUrlInput

pytestmark = pytest.mark.hardening

CORPUS = Path(__file__).resolve().parents[1] / "data" / "ssrf-corpus.txt"
SLACK = 2.0  # seconds an abort may take beyond its deadline
TERMINAL = ("succeeded", "failed", "canceled")

# Loopback and metadata in every spelling; aimed at the canary's port so that a guard that
# let one through would be caught by the canary's connection count, not just by a refused
# connection to port 80.
ENCODINGS = (
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "127.000.000.001",
    "0.0.0.0",
    "0",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",
    "[64:ff9b::7f00:1]",
    "[fe80::1%25lo]",
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "[::ffff:169.254.169.254]",
    "[fd00:ec2::254]",
    "100.100.100.200",
    "168.63.129.16",
    "192.0.0.192",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
)

# Allowlist confusion around the allowlisted names (and the trusted hostile.test).
CONFUSION = (
    "http://127.0.0.1:{port}\\@hostile.test/a.mp3",
    "http://hostile.test:{port}\\@127.0.0.1/a.mp3",
    "http://hostile.test@127.0.0.1:{port}/a.mp3",
    "http://hostile.test:{port}@127.0.0.1:{port}/a.mp3",
    "http://user:pass@hostile.test:{port}/a.mp3",
    "http://127.0.0.1:{port}#@hostile.test/a.mp3",
    "http://127.0.0.1:{port}?@hostile.test/a.mp3",
    "http://hostile.test.evil.test:{port}/a.mp3",
    "http://evilhostile.test:{port}/a.mp3",
    "http://hostile.test.127.0.0.1.nip.io:{port}/a.mp3",
    "http://hostile%2Etest:{port}/a.mp3",
    "http://hostile.test%2e:{port}/a.mp3",
    "http://hostile.test:{port}%0d%0aX:1/a.mp3",
    "http://hostile.test:{port}/a.mp3\r\nHost: 127.0.0.1",
    "http://hostile.test:{port}/a\x00.mp3",
    "http://hostile.test\x00.evil.test:{port}/a.mp3",
    "http://ho\u0455tile.test:{port}/a.mp3",
    "https://media.example.com:{port}@127.0.0.1/a.mp3",
    "http://media.example.com/a.mp3",  # allowlisted, but plain HTTP to an untrusted host
    "hls+http://hostile.test:{port}/a.m3u8",
    "concat:http://hostile.test:{port}/a.mp3|file:///etc/passwd",
    "subfile,,start,0,end,100,,:http://hostile.test:{port}/a.mp3",
    "HTTP://hostile.test:{port}:{port}/a.mp3",
    "http://[hostile.test]:{port}/a.mp3",
)

# Names in the allowlist that the fake resolver sends somewhere internal.
TRAPS = tuple(
    name for name in ALLOWED_NAMES if name != "hostile.test" and not name.startswith("rebind")
)

# Hostile responses from the trusted origin: path -> expected error code.
RESPONSES = {
    "/oversized": "download_too_large",
    "/no-length": "download_too_large",
    "/endless": "download_too_large",
    "/gzip-bomb": "download_too_large",
    "/drip": "fetch_failed",
    "/drip-headers": "fetch_failed",
    "/loop": "fetch_failed",
    "/hops/6": "fetch_failed",
    "/to-canary": "url_not_allowed",
    "/to-canary-decimal": "url_not_allowed",
    "/to-canary-v6": "url_not_allowed",
    "/to-private": "url_not_allowed",
    "/to-metadata": "url_not_allowed",
    "/to-downgrade": "url_not_allowed",
    "/to-file": "url_not_allowed",
    "/to-ftp": "url_not_allowed",
    "/to-gopher": "url_not_allowed",
    "/to-userinfo": "url_not_allowed",
    "/to-scheme-relative": "url_not_allowed",
    "/to-crlf": "fetch_failed",
}


def corpus() -> list[str]:
    lines = [
        line
        for line in CORPUS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # The corpus spells a homoglyph and a NUL as escapes; send the real characters too.
    decoded = [
        line.encode().decode("unicode_escape") for line in lines if "\\u" in line or "\\x" in line
    ]
    return lines + decoded


def refused_urls(canary_port: int) -> list[str]:
    """Every URL the policy must refuse before any I/O on this server."""
    urls = corpus()
    for host in ENCODINGS:
        for scheme in ("http", "https"):
            urls.append(f"{scheme}://{host}:{canary_port}/a.mp3")
    urls += [template.format(port=canary_port) for template in CONFUSION]
    return urls


# --- how each entry point is driven ----------------------------------------------------------


def sync_request(client: httpx.Client, url: str) -> httpx.Response:
    return client.post("/v1/audio/transcriptions", json={"url": url, "model": "whisper-1"})


def job_request(client: httpx.Client, url: str) -> httpx.Response:
    return client.post(
        "/v1/jobs", json={"job_type": "transcribe", "input": {"kind": "url", "url": url}}
    )


def callback_request(target: Target) -> Callable[[httpx.Client, str], httpx.Response]:
    def send(client: httpx.Client, url: str) -> httpx.Response:
        body = {
            "job_type": "transcribe",
            "input": {"kind": "url", "url": target.hostile("/oversized")},
            "callback_url": url,
        }
        return client.post("/v1/jobs", json=body)

    return send


def reference_body(media_url: str, reference_url: str) -> dict[str, Any]:
    return {
        "job_type": "transcribe",
        "input": {"kind": "url", "url": media_url},
        "diarization": {
            "enabled": True,
            "strategy": "pyannote_known_speaker",
            "known_speakers": [
                {
                    "id": "host",
                    "name": "Host",
                    "references": [
                        {"kind": "clip_artifact", "audio": {"kind": "url", "url": reference_url}}
                    ],
                }
            ],
        },
    }


def reference_request(target: Target) -> Callable[[httpx.Client, str], httpx.Response]:
    def send(client: httpx.Client, url: str) -> httpx.Response:
        return client.post("/v1/jobs", json=reference_body(target.hostile("/speech.wav"), url))

    return send


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in TERMINAL:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def wait_for_webhook(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job.get("webhook", {}).get("state") in ("delivered", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"the callback of job {job_id} was not attempted: {job}")


def seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@pytest.fixture
def clean(target: Target) -> Iterator[None]:
    """After each test: nothing outside loopback was attempted, the canary was never hit."""
    before = len(target.outside_loopback())
    yield
    assert target.outside_loopback()[before:] == []
    assert target.canary.connections == 0


# --- policy refusals: 4xx, no row, no I/O ------------------------------------------------------


ENTRY_POINTS = ("sync", "job", "callback", "reference")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_refused_url_is_a_4xx_and_leaves_no_job_row(
    target: Target, entry: str, clean: None, figures: Figures
) -> None:
    send = {
        "sync": sync_request,
        "job": job_request,
        "callback": callback_request(target),
        "reference": reference_request(target),
    }[entry]
    urls = refused_urls(target.canary.port)
    jobs_before = target.job_count()
    origin_before = target.origin.connections
    wrong = []
    with target.client() as client:
        for url in urls:
            response = send(client, url)
            error = response.json().get("error") or {}
            # The refusal must be about the URL, not some other field of the request; a NUL
            # is refused in any JSON string (voxhelm.boundedjson) before the URL is looked at.
            about = f"{error.get('param')} {error.get('code')} {error.get('message')}".lower()
            nul = "\x00" in url and error.get("code") == "invalid_json"
            if response.status_code != 400 or ("url" not in about and not nul):
                wrong.append((url, response.status_code, response.text[:200]))
    assert wrong == []
    assert target.job_count() == jobs_before
    assert target.origin.connections == origin_before  # refused before any download
    assert target.guard_events("lookup") == []  # and before any name was looked up
    figures.bump("ssrf.policy_cases", len(urls))
    figures.add(f"ssrf.policy_cases.{entry}", len(urls))


# --- names resolving to internal addresses -----------------------------------------------------


@pytest.mark.parametrize("name", TRAPS)
def test_a_sync_url_whose_name_resolves_inside_is_refused_without_connecting(
    target: Target, name: str, clean: None, figures: Figures
) -> None:
    with target.client() as client:
        response = sync_request(client, f"https://{name}:{target.canary.port}/a.mp3")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_not_allowed", response.text
    assert response.json()["error"]["message"] == "URL resolves to a non-public address."
    assert str(DNS[name][0]) not in response.text  # the address is logged, never returned
    figures.bump("ssrf.resolver_cases")


def test_jobs_whose_names_resolve_inside_fail_with_a_code(
    target: Target, clean: None, figures: Figures
) -> None:
    standin_before = target.standin.connections
    with target.client() as client:
        ids = [
            job_request(client, f"https://{name}:{target.canary.port}/a.mp3").json()["id"]
            for name in TRAPS
        ]
        jobs = [wait_for_job(client, job_id) for job_id in ids]
    assert [(job["state"], job["error"]["code"]) for job in jobs] == [
        ("failed", "url_not_allowed")
    ] * len(TRAPS)
    assert target.standin.connections == standin_before
    figures.bump("ssrf.resolver_cases", len(TRAPS))


def test_a_reference_url_resolving_inside_fails_the_job_with_a_code(
    target: Target, clean: None, figures: Figures
) -> None:
    with target.client() as client:
        created = client.post(
            "/v1/jobs",
            json=reference_body(target.hostile("/speech.wav"), "https://metadata.test/a.wav"),
        )
        assert created.status_code == 201, created.text
        job = wait_for_job(client, created.json()["id"])
    assert job["state"] == "failed"
    assert job["error"]["code"] == "reference_audio_failed"
    assert "metadata.test" not in job["error"]["message"]
    assert "169.254" not in job["error"]["message"]
    figures.bump("ssrf.resolver_cases")


def test_a_callback_resolving_inside_is_never_delivered(
    target: Target, clean: None, figures: Figures
) -> None:
    with target.client() as client:
        created = callback_request(target)(client, "https://private.test/hook")
        assert created.status_code == 201, created.text
        job = wait_for_webhook(client, created.json()["id"])
    attempt = job["webhook"]["attempts"][0]
    assert job["webhook"]["state"] == "failed"
    assert attempt["error"] == "URL resolves to a non-public address."
    assert "status" not in attempt or attempt["status"] is None
    figures.bump("ssrf.resolver_cases")


# --- DNS rebinding: the connection goes to the address that was checked ------------------------


def test_a_rebinding_name_is_connected_to_at_the_checked_address(
    target: Target, clean: None, figures: Figures
) -> None:
    before = target.standin.connections
    with target.client() as client:
        sync = sync_request(client, f"https://rebind-sync.test:{target.canary.port}/a.mp3")
        job = wait_for_job(
            client,
            job_request(client, f"https://rebind-job.test:{target.canary.port}/a.mp3").json()["id"],
        )
    # The first answer (public) was checked and connected to — the stand-in accepted and hung
    # up, so both fail; the second answer (the canary on loopback) was never used.
    assert sync.status_code == 400 and sync.json()["error"]["code"] == "fetch_failed"
    assert (job["state"], job["error"]["code"]) == ("failed", "fetch_failed")
    assert target.standin.connections == before + 2
    assert {e["target"].split(":")[0] for e in target.guard_events("standin")} == {STANDIN_ADDRESS}
    figures.bump("ssrf.rebinding_cases", 2)


# --- hostile responses: bounded in size and time -----------------------------------------------


def test_the_positive_controls_are_fetched(target: Target, clean: None) -> None:
    """Without these the refusals above could come from a server that fetches nothing."""
    with target.client() as client:
        for path in ("/speech.wav", "/hops/5"):
            response = client.post(
                "/v1/audio/transcriptions",
                json={"url": target.hostile(path), "model": "whisper-1", "response_format": "text"},
            )
            assert response.status_code == 200, response.text
            assert "kitchen" in response.text.lower()


@pytest.mark.parametrize(("path", "code"), RESPONSES.items(), ids=list(RESPONSES))
def test_a_hostile_response_to_a_sync_fetch_is_a_4xx_within_the_deadline(
    target: Target, path: str, code: str, clean: None, figures: Figures
) -> None:
    started = time.monotonic()
    with target.client() as client:
        response = sync_request(client, target.hostile(path))
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert elapsed <= FETCH_TIMEOUT + SLACK
    figures.bump("ssrf.response_cases")
    figures.worst("ssrf.worst_sync_abort_seconds", elapsed)


def test_hostile_responses_to_jobs_fail_them_within_the_deadline(
    target: Target, clean: None, figures: Figures
) -> None:
    with target.client() as client:
        ids = {path: job_request(client, target.hostile(path)).json()["id"] for path in RESPONSES}
        jobs = {path: wait_for_job(client, job_id) for path, job_id in ids.items()}
    for path, job in jobs.items():
        assert (job["state"], job["error"]["code"]) == ("failed", RESPONSES[path]), path
        took = seconds_between(job["started_at"], job["finished_at"])
        assert took <= FETCH_TIMEOUT + SLACK, (path, took)
        figures.worst("ssrf.worst_job_abort_seconds", took)
    figures.bump("ssrf.response_cases", len(jobs))


def test_hostile_callback_receivers_are_not_followed_and_time_out(
    target: Target, clean: None, figures: Figures
) -> None:
    receivers = {"/to-canary": 302, "/drip-headers": None, "/endless": 200}
    with target.client() as client:
        ids = {
            path: callback_request(target)(client, target.hostile(path)).json()["id"]
            for path in receivers
        }
        jobs = {path: wait_for_webhook(client, job_id) for path, job_id in ids.items()}
    for path, status in receivers.items():
        attempt = jobs[path]["webhook"]["attempts"][0]
        assert attempt.get("status") == status, (path, attempt)
        assert attempt["duration_ms"] <= (WEBHOOK_TIMEOUT + SLACK) * 1000, (path, attempt)
        figures.worst("ssrf.worst_webhook_seconds", attempt["duration_ms"] / 1000)
    figures.bump("ssrf.response_cases", len(receivers))


def test_nothing_went_through_a_proxy_and_no_temporary_file_is_left(
    target: Target, figures: Figures
) -> None:
    # The server's proxy variables all point at the canary; the controls above succeeded.
    assert target.canary.connections == 0
    assert target.outside_loopback() == []
    figures.add("ssrf.connections_outside_loopback", len(target.outside_loopback()))
    figures.add("ssrf.canary_hits", target.canary.connections)


# --- the remote worker's own download (in-process, under the pytest socket guard) ------------


@pytest.fixture
def worker_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker resolves through ``fetch.resolve``: give it the same table (no DNS here)."""

    def resolve(host: str, port: int) -> list[str]:
        entry = DNS.get(host)
        if entry is None:
            raise OSError("unknown name")
        return list(entry["first"] if isinstance(entry, dict) else entry)

    monkeypatch.setattr(fetch, "resolve", resolve)


def test_the_remote_worker_refuses_what_the_server_refuses(
    target: Target, worker_dns: None, tmp_path: Path, figures: Figures
) -> None:
    config = make_config(
        tmp_path,
        VOXHELM_ALLOWED_URL_HOSTS=allowlist(ALLOWED_NAMES),
        VOXHELM_TRUSTED_HTTP_HOSTS="hostile.test",
        VOXHELM_URL_FETCH_TIMEOUT_SECONDS=str(FETCH_TIMEOUT),
        VOXHELM_BATCH_MAX_DOWNLOAD_BYTES=str(DOWNLOAD_CAP),
    )
    urls = refused_urls(target.canary.port)
    urls += [f"https://{name}:{target.canary.port}/a.mp3" for name in TRAPS]
    urls += [target.hostile(path) for path in RESPONSES]
    workdir = tmp_path / "work"
    workdir.mkdir()
    worst = 0.0
    for url in urls:
        job = ClaimedJob.model_construct(input=ClaimedUrlInput(url=url))
        started = time.monotonic()
        with pytest.raises(InvalidInput):
            materialize(job, config, workdir)
        worst = max(worst, time.monotonic() - started)
    assert worst <= FETCH_TIMEOUT + SLACK
    assert list(workdir.iterdir()) == []
    assert target.canary.connections == 0
    # The positive control: the same worker does download an allowed URL.
    fetched = materialize(
        ClaimedJob.model_construct(input=ClaimedUrlInput(url=target.hostile("/speech.wav"))),
        config,
        workdir,
    )
    assert fetched.path.read_bytes()[:4] == b"RIFF"
    figures.add("ssrf.remote_worker_cases", len(urls))
    figures.worst("ssrf.worst_worker_abort_seconds", worst)

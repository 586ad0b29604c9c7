"""The remote worker's HTTP client against real HTTP(S) servers on loopback: answers, refusals,
failures to reach the server, kept-alive connections, TLS trust and proxies."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.loopback import ThreadedServer
from voxhelm.remote_worker.client import USER_AGENT, ApiFailure, Unreachable, WorkerClient
from voxhelm.worker_protocol.messages import (
    CLAIM_PATH,
    WORKER_HEARTBEAT_PATH,
    Capabilities,
    ClaimRequest,
    ClaimResponse,
    WorkerHeartbeat,
    WorkerHeartbeatResponse,
)

TOKEN = "worker-secret-token-7f3a"
HEARTBEAT_ANSWER = {
    "worker_id": "atlas",
    "enabled": True,
    "server_time": "2026-01-01T00:00:00Z",
    "poll_after_seconds": 7,
}
CONFLICT = {
    "error": {
        "message": "The lease is no longer held.",
        "type": "conflict_error",
        "param": None,
        "code": "lease_lost",
    }
}


@dataclass
class Answer:
    status: int = 204
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (cut short when the test ends)
    drop: bool = False  # read the request, then close the connection without answering
    cut: bool = False  # send the headers and the body's start, then reset the connection


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # lowercased names
    body: bytes


@dataclass
class Loopback:
    """A threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, as the real one) answering POSTs
    with ``answers`` in turn (then 204), recording connections and requests."""

    tls: ssl.SSLContext | None = None
    answers: list[Answer] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.seen.append(Seen(self.path, headers, body))
                answer = owner.answers.pop(0) if owner.answers else Answer()
                owner.stopping.wait(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    return
                if answer.cut:
                    self.cut_short(answer)
                    return
                self.send_response(answer.status)
                if answer.status != 204:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            def cut_short(self, answer: Answer) -> None:
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(answer.body) + 100))
                self.end_headers()
                self.wfile.write(answer.body)
                owner.stopping.wait(0.2)  # the client reads what came and waits for the rest
                # SO_LINGER 0: closing sends a reset, not the end of the stream.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()  # the real close, once rfile and wfile are closed
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadedServer(Handler, tls=self.tls, on_connect=self.connections.append)
        self.port = self.httpd.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(status: int, document: object, **options: Any) -> Answer:
    return Answer(status, json.dumps(document).encode(), **options)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy variables of whoever runs the suite must not route these requests."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server() -> Iterator[Loopback]:
    loopback = Loopback()
    yield loopback
    loopback.stop()


@pytest.fixture
def client(server: Loopback) -> WorkerClient:
    return WorkerClient(server.url, TOKEN, timeout=5.0)


def heartbeat(client: WorkerClient) -> WorkerHeartbeatResponse | None:
    return client.post(
        WORKER_HEARTBEAT_PATH, WorkerHeartbeat(worker_id="atlas"), WorkerHeartbeatResponse
    )


def test_it_posts_the_model_as_json_with_the_token(server: Loopback, client: WorkerClient) -> None:
    server.answers.append(answer(200, HEARTBEAT_ANSWER))

    assert heartbeat(client) == WorkerHeartbeatResponse(**HEARTBEAT_ANSWER)

    [request] = server.seen
    assert request.path == WORKER_HEARTBEAT_PATH
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    sent = json.loads(request.body)
    assert sent["worker_id"] == "atlas"
    assert sent == WorkerHeartbeat(worker_id="atlas").model_dump(mode="json", exclude_none=True)


def test_it_answers_none_for_204_no_content(server: Loopback, client: WorkerClient) -> None:
    server.answers.append(Answer(204))

    claim = client.post(
        CLAIM_PATH, ClaimRequest(worker_id="atlas", capabilities=Capabilities()), ClaimResponse
    )

    assert claim is None
    assert [request.path for request in server.seen] == [CLAIM_PATH]


def test_a_refusal_carries_the_envelope_message(server: Loopback, client: WorkerClient) -> None:
    server.answers.append(answer(409, CONFLICT))

    with pytest.raises(ApiFailure) as caught:
        client.post_raw("/v1/internal/work/j1/heartbeat", {"lease_token": "t"})

    assert caught.value.status == 409
    assert caught.value.message == "The lease is no longer held."


def test_a_redirect_is_refused_not_followed(server: Loopback, client: WorkerClient) -> None:
    # Following it would send the token wherever the Location points.
    server.answers.append(Answer(307, b"", headers={"Location": f"{server.url}/elsewhere"}))

    with pytest.raises(ApiFailure) as caught:
        heartbeat(client)

    assert caught.value.status == 307
    assert [request.path for request in server.seen] == [WORKER_HEARTBEAT_PATH]


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = WorkerClient(f"http://127.0.0.1:{port}", TOKEN, timeout=5.0)

    with pytest.raises(Unreachable, match=f"http://127.0.0.1:{port}: .*refused"):
        heartbeat(client)


def test_a_read_timeout_is_unreachable_and_never_sent_twice(server: Loopback) -> None:
    # Sending a claim again after a timeout could lease a second job while the server is
    # still answering the first.
    server.answers.append(answer(200, HEARTBEAT_ANSWER, delay=10.0))
    client = WorkerClient(server.url, TOKEN, timeout=0.3)

    with pytest.raises(Unreachable, match="timed out"):
        heartbeat(client)

    assert len(server.seen) == 1


def test_one_connection_serves_call_after_call(server: Loopback, client: WorkerClient) -> None:
    server.answers += [answer(200, HEARTBEAT_ANSWER), Answer(204), answer(409, CONFLICT)]

    assert heartbeat(client) is not None
    assert heartbeat(client) is None
    with pytest.raises(ApiFailure):
        heartbeat(client)

    assert len(server.seen) == 3
    assert len(server.connections) == 1


def test_a_kept_connection_closed_unanswered_is_tried_once_more_on_a_new_one(
    server: Loopback, client: WorkerClient
) -> None:
    # As uvicorn closing an idle connection just as the next request goes out on it.
    server.answers += [Answer(204), Answer(drop=True), answer(200, HEARTBEAT_ANSWER)]

    assert heartbeat(client) is None
    assert heartbeat(client) == WorkerHeartbeatResponse(**HEARTBEAT_ANSWER)

    assert len(server.seen) == 3
    assert len(server.connections) == 2


def test_a_server_that_keeps_closing_unanswered_is_unreachable_after_two_tries(
    server: Loopback, client: WorkerClient
) -> None:
    server.answers += [Answer(drop=True), Answer(drop=True), Answer(204)]

    with pytest.raises(Unreachable, match="Connection aborted"):
        heartbeat(client)

    assert len(server.seen) == 2


def test_a_connection_lost_once_the_answer_began_is_not_tried_again(
    server: Loopback, client: WorkerClient
) -> None:
    # The server has acted on the request (a claim may have leased a job): sending it again
    # could lease a second one.
    server.answers += [Answer(200, b'{"worker_id": ', cut=True), Answer(204)]

    with pytest.raises(Unreachable, match="Connection broken"):
        heartbeat(client)

    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "The server's answer is nested deeper than 32 levels."),
        (b'{"poll_after_seconds": 1' + b"0" * 4000 + b"}", "The server's answer was not valid"),
        (b'{"poll_after_seconds": 1e999999}', "The server's answer was not valid JSON: JSON n"),
        (b"[]", "the answer was not a JSON object"),
        (b"<html>", "The server's answer was not valid JSON."),
    ],
    ids=["deep", "huge-integer", "infinite", "array", "not-json"],
)
def test_an_unreadable_answer_is_refused(
    server: Loopback, client: WorkerClient, body: bytes, message: str
) -> None:
    server.answers.append(Answer(200, body))

    with pytest.raises(ApiFailure) as caught:
        heartbeat(client)

    assert caught.value.status == 200
    assert caught.value.message.startswith(message)


def test_a_compressed_answer_is_not_inflated(server: Loopback, client: WorkerClient) -> None:
    # gzip of an endless run of "[" would inflate without bound; nothing asks for gzip.
    server.answers.append(Answer(200, b"\x1f\x8b\x08\x00", headers={"Content-Encoding": "gzip"}))

    with pytest.raises(ApiFailure, match="not valid JSON"):
        heartbeat(client)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[Loopback]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    loopback = Loopback(tls=context)
    yield loopback
    loopback.stop()


def test_tls_is_verified_against_the_configured_trust_store(
    tls_server: Loopback, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    tls_server.answers.append(answer(200, HEARTBEAT_ANSWER))

    assert heartbeat(WorkerClient(tls_server.url, TOKEN, 5.0)) is not None
    assert tls_server.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_certificate_outside_the_trust_store_is_unreachable(tls_server: Loopback) -> None:
    with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
        heartbeat(WorkerClient(tls_server.url, TOKEN, 5.0))

    assert tls_server.seen == []


def test_it_goes_through_the_proxy_of_the_environment(
    server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy is the loopback server itself, so the request line shows the absolute URL;
    # voxhelm.test is never resolved (the test may reach nothing but loopback).
    monkeypatch.setenv("http_proxy", server.url)
    client = WorkerClient("http://voxhelm.test:8000", TOKEN, 5.0)

    assert heartbeat(client) is None

    [request] = server.seen
    assert request.path == f"http://voxhelm.test:8000{WORKER_HEARTBEAT_PATH}"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_no_proxy_naming_the_server_bypasses_the_proxy(
    server: Loopback, client: WorkerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = Loopback()
    try:
        monkeypatch.setenv("http_proxy", canary.url)
        monkeypatch.setenv("no_proxy", "127.0.0.1")

        assert heartbeat(WorkerClient(server.url, TOKEN, 5.0)) is None

        assert [request.path for request in server.seen] == [WORKER_HEARTBEAT_PATH]
        assert canary.seen == []
        assert canary.connections == []
    finally:
        canary.stop()


def test_the_token_is_never_logged_nor_shown(
    server: Loopback, client: WorkerClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.answers += [answer(200, HEARTBEAT_ANSWER), answer(409, CONFLICT)]
    server.answers += [Answer(drop=True), Answer(drop=True)]
    caplog.set_level(logging.DEBUG)
    failures: list[Exception] = []

    heartbeat(client)
    for _ in range(2):
        try:
            heartbeat(client)
        except (ApiFailure, Unreachable) as exc:
            failures.append(exc)

    assert [type(exc) for exc in failures] == [ApiFailure, Unreachable]
    assert "127.0.0.1" in caplog.text  # urllib3 logged its requests
    assert TOKEN not in caplog.text + repr(client) + "".join(map(str, failures))


def test_a_url_without_http_or_https_is_refused(tmp_path: Path) -> None:
    # urllib3 would take it for plain HTTP and send the token unencrypted.
    with pytest.raises(ValueError, match="must start with https:// or http://"):
        WorkerClient("voxhelm.lan", TOKEN, 5.0)

    env = {
        "PATH": "/usr/bin:/bin",
        "VOXHELM_VAR_DIR": str(tmp_path),
        "VOXHELM_WORKER_ID": "atlas",
        "VOXHELM_WORKER_TOKEN": TOKEN,
        "VOXHELM_WORKER_BASE_URL": "voxhelm.lan",
    }
    result = subprocess.run(
        [sys.executable, "-m", "voxhelm.remote_worker.cli", "--once"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "voxhelm-remote-worker: the server's URL must start with https:// or http://: voxhelm.lan"
    )


def test_a_lone_surrogate_goes_out_escaped(server: Loopback, client: WorkerClient) -> None:
    # The server refuses it (400); encoding it as UTF-8 here would raise instead.
    assert client.post_raw("/v1/internal/work/j1/fail", {"error_detail": "bad \ud800"}) is None

    assert server.seen[0].body == b'{"error_detail": "bad \\ud800"}'

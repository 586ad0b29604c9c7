"""Request bodies under attack: every path has a cap that fits it, a stranger's body is
refused before it is read, and a full temporary disk answers 507 in the envelope.

Each attack streams a 300 MiB chunked body over a raw socket (the way a hostile client
would, no library that gives up early) and measures how long the server takes to answer
and what it put on disk meanwhile.
"""

from __future__ import annotations

import json
import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import PRODUCER_TOKEN, WORKER_TOKEN, ServerProcess, start_server
from tests.hardening.conftest import METRICS_TOKEN, Figures, Target
from tests.hardening.disks import DiskSampler, fill, small_disk
from tests.speech import synthesize

pytestmark = pytest.mark.hardening

MIB = 1024 * 1024
ATTACK_BYTES = 300 * MIB
CHUNK = b"[" * 65536
REFUSE_WITHIN = 2.0  # seconds from the first body byte to the answer
JOB = "/v1/jobs/00000000-0000-4000-8000-000000000000"

# (method, path, bearer token, status): the paths of the issue and one of every other kind.
STRANGERS = [
    ("POST", "/v1/jobs", None, 401),
    ("POST", "/v1/jobs", "wrong-token", 401),
    ("PUT", "/v1/jobs", None, 401),
    ("POST", f"{JOB}/cancel", None, 401),
    ("POST", "/v1/audio/speech", None, 401),
    ("POST", "/v1/audio/transcriptions", None, 401),
    ("POST", "/v1/audio/translations", None, 401),
    ("POST", "/v1/uploads", None, 401),
    ("POST", "/v1/internal/work/claim", None, 401),
    ("POST", "/v1/internal/work/claim", PRODUCER_TOKEN, 401),  # a producer is no worker
    ("POST", "/v1/internal/workers/heartbeat", "wrong-token", 401),
    ("POST", "/v1/health", None, 401),
    ("POST", "/v1/models", None, 401),
    ("POST", "/v1/no/such/path", None, 401),
    ("POST", "/v1", None, 401),
    ("POST", "/metrics", None, 401),
    ("POST", "/metrics", PRODUCER_TOKEN, 401),
    ("POST", "/jobs", None, 403),  # console pages take no body from visitors
    ("POST", "/static/console/console.css", None, 413),  # a few KiB, from anyone
    ("POST", "/no-such-page", None, 413),
    ("POST", "/", None, 413),  # the sign-in form: 16 KiB
    ("POST", "/logout", None, 413),
]
# A valid credential still meets the cap of its path.
MEMBERS = [
    ("POST", "/v1/jobs", PRODUCER_TOKEN, 413),
    ("POST", "/v1/audio/speech", PRODUCER_TOKEN, 413),
    ("POST", "/v1/internal/work/claim", WORKER_TOKEN, 413),
    ("POST", "/v1/health", PRODUCER_TOKEN, 413),
    ("POST", "/metrics", METRICS_TOKEN, 413),
    ("POST", f"{JOB}/cancel", PRODUCER_TOKEN, 413),
]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client got into the socket before the answer
    seconds: float  # from the first body byte to the answer

    def json(self) -> dict[str, object]:
        parsed: dict[str, object] = json.loads(self.body)
        return parsed


def stream_attack(
    url: str,
    method: str,
    path: str,
    token: str | None,
    *,
    total: int = ATTACK_BYTES,
    extra_headers: dict[str, str] | None = None,
    declared: int | None = None,
) -> Answer:
    """Send ``total`` body bytes (chunked, or with a declared length) until the server
    answers; return its answer."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    headers = {"Host": f"{parts.hostname}:{parts.port}", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if declared is None:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(declared)
    headers.update(extra_headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((head + "\r\n").encode())
    frame = CHUNK if declared is not None else b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    sent = 0
    started = time.monotonic()
    sock.setblocking(False)
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable or not writable:
                break
            try:
                sock.send(frame)
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                break
            sent += len(CHUNK)
        sock.setblocking(True)
        sock.settimeout(30)
        raw = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            raw += data
            if b"\r\n\r\n" in raw and _complete(raw):
                break
        seconds = time.monotonic() - started
    finally:
        sock.close()
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return Answer(status, {k.lower(): v for k, v in fields.items()}, body, sent, seconds)


def _complete(raw: bytes) -> bool:
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


@pytest.fixture
def sampler(target: Target) -> Iterator[DiskSampler]:
    roots = (target.server.tmp_dir, target.server.var_dir / "artifacts")
    with DiskSampler(*roots, pid=target.server.process.pid) as sampler:
        yield sampler


def check_answer(answer: Answer, path: str, status: int) -> None:
    assert answer.status == status, (path, answer.status, answer.body[:300])
    assert answer.seconds < REFUSE_WITHIN, (path, answer.seconds)
    assert answer.headers.get("connection") == "close", (path, answer.headers)
    if path.startswith("/v1"):
        error = answer.json()["error"]
        assert isinstance(error, dict)
        assert set(error) == {"message", "type", "param", "code"}, error
        assert error["code"] == ("invalid_api_key" if status == 401 else "payload_too_large")
    if status == 401:
        assert answer.headers.get("www-authenticate") == "Bearer", answer.headers


def test_a_strangers_body_is_refused_before_it_is_read_on_every_path(
    target: Target, sampler: DiskSampler, figures: Figures
) -> None:
    answers = []
    for method, path, token, status in STRANGERS:
        answer = stream_attack(target.url, method, path, token)
        check_answer(answer, path, status)
        answers.append(answer)
    assert sampler.peak < 64 * 1024, sampler.peak  # nothing spooled: under one chunk
    figures.add("bodies: stranger attacks (paths x 300 MiB chunked)", len(answers))
    figures.worst("bodies: slowest refusal of a stranger (s)", max(a.seconds for a in answers))
    figures.add("bodies: disk high-water during stranger attacks (bytes)", sampler.peak)
    figures.add(
        "bodies: most body bytes a stranger got into the socket (MiB)",
        round(max(a.sent for a in answers) / MIB, 1),
    )


def test_a_declared_length_over_any_cap_is_refused_at_once(target: Target) -> None:
    for method, path, token, status in [*STRANGERS, *MEMBERS]:
        answer = stream_attack(target.url, method, path, token, total=0, declared=ATTACK_BYTES)
        check_answer(answer, path, status)


def test_a_valid_credential_still_meets_the_cap_of_its_path(
    target: Target, sampler: DiskSampler, figures: Figures
) -> None:
    answers = [stream_attack(target.url, m, p, t) for m, p, t, _ in MEMBERS]
    for (_, path, _, status), answer in zip(MEMBERS, answers, strict=True):
        check_answer(answer, path, status)
    assert sampler.peak < 512 * 1024, sampler.peak  # JSON caps stay in memory
    figures.worst("bodies: slowest 413 for a member (s)", max(a.seconds for a in answers))


def test_a_forged_session_cookie_gets_no_more_than_the_sign_in_form(target: Target) -> None:
    cookie = {"Cookie": "sessionid=forged0000000000000000000000000; csrftoken=x"}
    answer = stream_attack(target.url, "POST", "/", None, extra_headers=cookie)
    check_answer(answer, "/", 413)
    assert b"16 KiB" in answer.body


def test_a_small_body_still_reaches_its_view(target: Target) -> None:
    """The gate refuses bodies, not requests: a stranger's empty POST gets the view's own
    answer, and a member's JSON its validation."""
    with target.client(None) as stranger:
        assert stranger.post("/v1/jobs").status_code == 401
        assert stranger.post("/jobs").status_code in (302, 403)
    with target.client() as client:
        response = client.post("/v1/jobs", json={"input": {}})
    assert response.status_code == 400, response.text


# -- a small temporary disk -----------------------------------------------------------------


def padded_speech(size: int) -> bytes:
    """A WAV of real speech followed by silence, ``size`` bytes in all."""
    speech = synthesize("Please turn on the kitchen lights.")
    pause = (size - len(speech.wav_bytes())) / 2 / speech.sample_rate
    return synthesize(speech.text, pause_seconds=pause).wav_bytes()


@pytest.fixture(scope="module")
def small_tmp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("small-tmp")
    with small_disk(root / "tmp", "12m") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs needs root (the CI runs as root)")
        server = start_server(root)
        yield server
        server.stop()


def transcribe(server: ServerProcess, wav: bytes) -> tuple[int, dict[str, object]]:
    with server.client() as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", wav, "audio/wav")},
            data={"model": "whisper-1"},
        )
    return response.status_code, response.json()


def test_strangers_cannot_fill_a_small_temp_disk_under_a_producer(
    small_tmp_server: ServerProcess, figures: Figures
) -> None:
    """The issue's scenario: with the temporary directory on a small disk, strangers stream
    300 MiB bodies while a producer sends a normal 3 MB transcription; it succeeds."""
    wav = padded_speech(3 * MIB)
    with ThreadPoolExecutor(4) as pool:
        attacks = [
            pool.submit(stream_attack, small_tmp_server.url, "POST", path, None)
            for path in ("/v1/jobs", "/v1/audio/speech", "/v1/no/such/path")
        ]
        status, body = transcribe(small_tmp_server, wav)
        refused = [attack.result() for attack in attacks]
    assert status == 200, body
    assert "kitchen" in str(body["text"]).lower(), body
    assert [answer.status for answer in refused] == [401, 401, 401]
    figures.add("bodies: 3 MB transcription beside 3 stranger streams, 12 MiB temp disk", status)


def test_a_full_temp_disk_answers_507_in_the_envelope(
    small_tmp_server: ServerProcess, figures: Figures
) -> None:
    wav = padded_speech(3 * MIB)
    filler = small_tmp_server.tmp_dir / "filler"
    fill(small_tmp_server.tmp_dir)
    try:
        started = time.monotonic()
        status, body = transcribe(small_tmp_server, wav)
        seconds = time.monotonic() - started
    finally:
        filler.unlink()
    assert status == 507, body
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "insufficient_storage", error
    assert str(small_tmp_server.tmp_dir) not in str(error["message"])
    assert [p.name for p in Path(small_tmp_server.tmp_dir).iterdir()] == []
    status, body = transcribe(small_tmp_server, wav)  # space again: it works again
    assert status == 200, body
    assert "Traceback" not in small_tmp_server.log()
    figures.add("bodies: full temp disk -> status / seconds", f"{507} / {seconds:.2f}")


def test_a_client_that_writes_its_whole_body_first_still_reads_the_refusal(
    target: Target,
) -> None:
    """urllib sends the whole body before it reads: the gate answers at once, then throws
    away what is still coming, so the client sees the 401, not a reset."""
    body = b"\0" * (4 * MIB + MIB // 2)  # under the 5 MiB cap, more than socket buffers hold
    request = urllib.request.Request(
        f"{target.url}/v1/audio/transcriptions",
        data=body,
        headers={"Content-Type": "application/octet-stream", "Authorization": "Bearer wrong"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"]["code"] == "invalid_api_key"

"""No Voxhelm process phones home: each entry point runs under strace while its models work.

onnxruntime's official builds carry Microsoft's 1DS telemetry. As it initialises (on
``import onnxruntime``) it writes a device id file, ``.ses``, into the temporary directory;
9 s later it resolves ``mobile.events.data.microsoft.com`` and tries to connect, and retries
every 5-9 s for the life of the process. That is native code, out of reach of the Python
socket guards (``tests/netguard.py``, ``guard/sitecustomize.py``), so this suite watches the
system calls instead: ``connect``, ``sendto``, ``sendmsg`` and ``sendmmsg`` (every way to
name a destination; each must be loopback) and ``openat`` (the resolver's configuration, the
``.ses`` file, and the moment onnxruntime loads). A future dependency that adds telemetry
fails here the same way.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

import voxhelm
from tests.conftest import (
    process_env,
    start_server,
    start_worker,
    stop_process,
)
from tests.hardening.conftest import FIGURES, Figures
from tests.s3server import S3Server
from tests.speech import synthesize, word_error_rate
from tests.workers.cluster import (
    Submitter,
    cluster_env,
    start_remote_worker,
    wait_for_job,
)
from tests.wyoming_server.conftest import start_wyoming, transcribe

pytestmark = [pytest.mark.hardening, pytest.mark.slow]

STRACE = shutil.which("strace")
SENTENCE = "Please turn on the kitchen lights and open the garden door."
OBSERVE_SECONDS = 13.0
"""How long each process stays up after onnxruntime loaded: its uploader's first attempt
comes 9.0-9.2 s after the library loads (measured alone and with the whole fleet starting on
2 cores), the next ones 5.5 and 8.4 s apart; the rest is a margin for a busy machine."""
TRACED_CALLS = "connect,sendto,sendmsg,sendmmsg,openat"
ORT_LIBRARY = "onnxruntime_pybind11_state"
RESOLVER_FILES = ("/etc/resolv.conf", "/run/systemd/resolve/")
"""Files only a DNS client reads: a process that opens them is about to query a name server."""
LOOPBACK = ("127.0.0.1", "::1")
"""The only addresses a process may name: every server of the suite (the Voxhelm
processes, SeaweedFS) listens on 127.0.0.1, and the clients among them (the workers, the web
process's S3 client) connect there."""
UNIX_SOCKETS: tuple[str, ...] = ()
"""None is needed. A Unix socket never leaves the machine, but name services listen on them
(glibc asks nscd at /var/run/nscd/socket before it sends a query), so a socket that a future
feature needs goes here with its reason. Any other family (netlink, AF_UNSPEC) fails too."""


def strace_command(trace: Path) -> list[str]:
    """``strace`` as a wrapper whose child is the traced command itself.

    ``-D`` makes the tracer a grandchild, so the process the fixtures start (and stop with
    SIGTERM) is Voxhelm's, and its shutdown is traced too; ``--seccomp-bpf`` stops only on the
    traced calls, so the model threads run at full speed.
    """
    assert STRACE is not None
    return [STRACE, "-D", "-f", "--seccomp-bpf", "-q", "-ttt", "-e", f"trace={TRACED_CALLS}",
            "-o", str(trace)]  # fmt: skip


@dataclass(frozen=True)
class Destination:
    """Where one ``connect``/``send*`` call went, as strace printed it."""

    family: str
    address: str  # IP, Unix socket path, or "" (AF_UNSPEC, AF_NETLINK)
    port: int | None
    line: str

    def allowed(self) -> bool:
        if self.port == 53:
            return False  # DNS, even to a resolver on loopback
        if self.family in ("AF_INET", "AF_INET6"):
            return self.address in LOOPBACK
        return self.family == "AF_UNIX" and self.address in UNIX_SOCKETS


@dataclass
class Trace:
    """What ``strace`` saw of one process and its children."""

    name: str
    path: Path
    root: Path
    destinations: list[Destination] = field(default_factory=list)
    resolver_reads: list[str] = field(default_factory=list)
    ses_writes: list[str] = field(default_factory=list)
    ses_left: list[Path] = field(default_factory=list)  # in its home or temporary folder
    onnxruntime_loaded_at: float | None = None
    calls: int = 0

    def read(self) -> None:
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = CALL.match(line)
            if match is None:
                continue
            stamp, name, args = float(match["stamp"]), match["name"], match["args"]
            self.calls += 1
            if name == "openat":
                self.read_open(stamp, args, line)
            else:
                self.destinations.extend(destinations_in(args, line))
        self.ses_left = sorted(self.root.rglob(".ses"))

    def read_open(self, stamp: float, args: str, line: str) -> None:
        path = re.search(r'"([^"]*)"', args)
        if path is None:
            return
        # A failed attempt counts too: a missing resolv.conf still means a lookup was tried.
        if path[1].startswith(RESOLVER_FILES):
            self.resolver_reads.append(line)
        if path[1].endswith("/.ses") and "O_CREAT" in args:
            self.ses_writes.append(line)
        loaded = "= -1 " not in line
        if ORT_LIBRARY in path[1] and loaded and self.onnxruntime_loaded_at is None:
            self.onnxruntime_loaded_at = stamp

    def outside(self) -> list[str]:
        return [d.line for d in self.destinations if not d.allowed()]


CALL = re.compile(r"^\d+\s+(?P<stamp>\d+\.\d+)\s+(?P<name>\w+)\((?P<args>.*)$")
SOCKADDR = re.compile(r"\{sa_family=(?P<family>AF_\w+)(?P<rest>[^{}]*)\}")


def destinations_in(args: str, line: str) -> list[Destination]:
    """Every socket address named in one call (``sendmmsg`` may name several)."""
    found = []
    for match in SOCKADDR.finditer(args):
        rest = match["rest"]
        address = re.search(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', rest)
        path = re.search(r'sun_path=(@?"[^"]*")', rest)
        port = re.search(r"port=htons\((\d+)\)", rest)
        where = (address[1] or address[2]) if address else (path[1].strip('"') if path else "")
        found.append(
            Destination(match["family"], where, int(port[1]) if port else None, line.strip())
        )
    return found


def wait_for_trace_end(trace: Trace, pid: int, timeout: float = 15) -> None:
    """The tracer (a grandchild) writes the traced process's exit last; wait for it."""
    ended = re.compile(rf"^{pid}\s+\S+\s+\+\+\+ (exited|killed)", re.MULTILINE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if trace.path.exists() and ended.search(trace.path.read_text(errors="replace")):
            return
        time.sleep(0.1)
    raise AssertionError(f"strace did not finish {trace.path}")


# -- the entry points and their work --------------------------------------------------------


@dataclass
class Running:
    """A traced process the suite keeps up until its observation window has passed."""

    trace: Trace
    process: subprocess.Popen[str]
    must_load_onnxruntime: bool


class Fleet:
    """Every traced Voxhelm process of the suite, each under a root of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: list[Running] = []
        self.finished: list[Trace] = []
        self.stopped_at = 0.0

    def place(self, name: str) -> tuple[Trace, dict[str, str]]:
        """A trace for ``name`` and the environment that keeps its files where checked."""
        return place(self.root, name)

    def keep(self, trace: Trace, process: subprocess.Popen[str], onnx: bool) -> None:
        self.running.append(Running(trace, process, onnx))

    def stop(self) -> None:
        """Once every process has been up OBSERVE_SECONDS past its onnxruntime load."""
        loads = [at for at in (load_time(r.trace) for r in self.running) if at]
        time.sleep(max(0.0, max(loads, default=0.0) + OBSERVE_SECONDS - time.time()))
        self.stopped_at = time.time()
        for running in self.running:
            stop_process(running.process)
        for running in self.running:
            wait_for_trace_end(running.trace, running.process.pid)
            self.finished.append(running.trace)
        for trace in self.finished:
            trace.read()


def place(parent: Path, name: str) -> tuple[Trace, dict[str, str]]:
    """A trace for ``name`` and an environment giving it a home and temporary folder of its
    own, where a telemetry id file would land."""
    root = parent / name
    env = {"HOME": str(root / "home"), "TMPDIR": str(root / "tmp")}
    for folder in env.values():
        Path(folder).mkdir(parents=True)
    return Trace(name, parent / f"{name}.strace", root), env


def load_time(trace: Trace) -> float | None:
    """When the traced process loaded onnxruntime so far (None: not yet)."""
    if not trace.path.exists():
        return None
    for line in trace.path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = CALL.match(line)
        if match and match["name"] == "openat" and ORT_LIBRARY in line and "= -1 " not in line:
            return float(match["stamp"])
    return None


def run_serve(fleet: Fleet) -> None:
    """``python -m voxhelm.cli serve``: a sync transcription with Silero VAD on, speech from
    Piper, and a diarized batch job (Silero VAD and CAM++ in the embedded worker)."""
    trace, env = fleet.place("serve")
    env["VOXHELM_FASTERWHISPER_VAD_FILTER"] = "true"
    server = start_server(trace.root, env, wrapper=strace_command(trace.path))
    fleet.keep(trace, server.process, onnx=True)
    wav = synthesize(SENTENCE).wav_bytes()
    with server.client() as client:
        heard = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", wav, "audio/wav")},
            data={"model": "whisper-1"},
        )
        assert heard.status_code == 200, heard.text
        assert word_error_rate(SENTENCE, heard.json()["text"]) < 0.25
        spoken = client.post("/v1/audio/speech", json={"model": "tts-1", "input": SENTENCE})
        assert spoken.status_code == 200, spoken.text
        assert spoken.content[:4] == b"RIFF" and len(spoken.content) > 32_000
        assert_diarized(client, wav)


def assert_diarized(client: httpx.Client, wav: bytes) -> None:
    job_id = Submitter(client).upload_job(wav, diarization={"enabled": True})
    body = wait_for_job(client, job_id, ("succeeded", "failed"), timeout=120)
    assert body["state"] == "succeeded", body
    assert body["result"]["metadata"]["diarization"]["enabled"] is True


def run_remote_set_up(fleet: Fleet, s3: S3Server) -> None:
    """``voxhelm web`` in remote_pull mode with a ``voxhelm worker`` (a synthesis job kept on
    the local workers: Piper) and a ``voxhelm-remote-worker`` (a diarized transcription:
    Silero VAD and CAM++)."""
    env = {
        **cluster_env(s3, s3.new_bucket()),
        "VOXHELM_DIARIZATION_BACKEND": "onnx",
        "VOXHELM_SYNTHESIS_EXECUTION_MODE": "django_tasks",
    }
    trace, home = fleet.place("web")
    web = start_server(trace.root, {**env, **home}, "web", wrapper=strace_command(trace.path))
    fleet.keep(trace, web.process, onnx=False)
    local, local_env = fleet.place("worker")
    remote, remote_env = fleet.place("remote-worker")

    def start_local() -> None:
        # The worker shares the web process's state (its database), as on one host.
        worker = start_worker(
            web.var_dir.parent, {**env, **local_env}, wrapper=strace_command(local.path)
        )
        fleet.keep(local, worker.process, onnx=True)

    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(start_local)
        worker = start_remote_worker(
            remote.root, "atlas", web, {**env, **remote_env}, wrapper=strace_command(remote.path)
        )
        fleet.keep(remote, worker.process, onnx=True)
        started.result()
    with web.client() as client:
        synthesis = client.post(
            "/v1/jobs", json={"job_type": "synthesize", "input": {"kind": "text", "text": SENTENCE}}
        )
        assert synthesis.status_code == 201, synthesis.text
        assert_diarized(client, synthesize(SENTENCE).wav_bytes())
        body = wait_for_job(client, synthesis.json()["id"], ("succeeded", "failed"), 120)
        assert body["state"] == "succeeded", body


def run_wyoming(fleet: Fleet) -> None:
    """``voxhelm-wyoming-stt``: a command through the ``wyoming`` client (Silero VAD; the
    default voice, Piper, loads at start)."""
    trace, env = fleet.place("wyoming")
    server = start_wyoming(trace.root, env, wrapper=strace_command(trace.path))
    fleet.keep(trace, server.process, onnx=True)
    speech = synthesize(SENTENCE)
    events = asyncio.run(transcribe(server.port, speech.samples, speech.sample_rate))
    assert [e.type for e in events] == ["transcript"], events
    assert word_error_rate(SENTENCE, events[0].data["text"]) < 0.25


def run_check(fleet: Fleet) -> None:
    """``voxhelm check``: the console script, to its end."""
    trace, env = fleet.place("check")
    command = [*strace_command(trace.path), str(Path(sys.executable).parent / "voxhelm"), "check"]
    with subprocess.Popen(
        command, env=process_env(trace.root, env), stdout=subprocess.PIPE, text=True
    ) as process:
        out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    assert "System check identified no issues" in out
    wait_for_trace_end(trace, process.pid)
    trace.read()
    fleet.finished.append(trace)


@pytest.fixture(scope="module")
def strace() -> None:
    """Skip without strace on a developer's machine, but never in CI, where it must run."""
    if STRACE is None:
        if os.environ.get("CI"):
            pytest.fail("strace is missing: .ci/run installs it (DEBIAN_PACKAGES)")
        pytest.skip("strace is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def fleet(
    strace: None, tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[Fleet]:
    processes = Fleet(tmp_path_factory.mktemp("telemetry"))
    synthesize(SENTENCE)  # once, before the threads share the cache
    work: list[Callable[[], None]] = [
        lambda: run_serve(processes),
        lambda: run_remote_set_up(processes, s3_server),
        lambda: run_wyoming(processes),
        lambda: run_check(processes),
    ]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(work)) as pool:
            for future in [pool.submit(job) for job in work]:
                future.result()
        processes.stop()
        FIGURES.add("telemetry: fleet wall time (s)", round(time.monotonic() - started, 1))
        yield processes
    finally:
        for running in processes.running:
            stop_process(running.process)


ENTRY_POINTS = ("serve", "web", "worker", "remote-worker", "wyoming", "check")


def trace_of(fleet: Fleet, name: str) -> Trace:
    return next(t for t in fleet.finished if t.name == name)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_it_connects_and_sends_only_to_loopback(fleet: Fleet, name: str) -> None:
    trace = trace_of(fleet, name)
    assert trace.calls > 0, f"strace saw nothing of {name}"
    outside = trace.outside()
    assert outside == [], "\n".join(outside)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_it_never_asks_a_name_server(fleet: Fleet, name: str) -> None:
    reads = trace_of(fleet, name).resolver_reads
    assert reads == [], "\n".join(reads)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_it_writes_no_telemetry_id(fleet: Fleet, name: str) -> None:
    trace = trace_of(fleet, name)
    assert (trace.ses_writes, trace.ses_left) == ([], [])


def test_every_onnx_user_ran_long_enough_to_be_caught(fleet: Fleet, figures: Figures) -> None:
    watched = {r.trace.name: r.trace.onnxruntime_loaded_at for r in fleet.running}
    must = {r.trace.name for r in fleet.running if r.must_load_onnxruntime}
    assert {name for name, at in watched.items() if at} >= must, watched
    shortest = min(fleet.stopped_at - at for at in watched.values() if at)
    assert shortest >= OBSERVE_SECONDS
    figures.add("telemetry: shortest watch after onnxruntime loaded (s)", round(shortest, 1))
    figures.add("telemetry: processes traced", len(fleet.finished))
    figures.add(
        "telemetry: processes that loaded onnxruntime", sum(bool(t) for t in watched.values())
    )
    figures.add("telemetry: traced calls", sum(t.calls for t in fleet.finished))
    figures.add("telemetry: destinations checked", sum(len(t.destinations) for t in fleet.finished))
    figures.add("telemetry: outside loopback", sum(len(t.outside()) for t in fleet.finished))
    figures.add("telemetry: resolver reads", sum(len(t.resolver_reads) for t in fleet.finished))
    figures.add("telemetry: .ses files written", sum(len(t.ses_writes) for t in fleet.finished))


def test_the_tracer_sees_native_resolver_and_connection_attempts(
    strace: None, tmp_path: Path
) -> None:
    """Positive control: from a native thread, glibc's resolver set-up and a UDP connect to a
    documentation address (no packet leaves: a UDP connect only picks a route) are caught."""
    trace = Trace("control", tmp_path / "control.strace", tmp_path)
    script = (
        "import ctypes, socket, threading\n"
        "def leak():\n"
        "    ctypes.CDLL(None).__res_init()\n"
        "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(('192.0.2.1', 53))\n"
        "t = threading.Thread(target=leak); t.start(); t.join()\n"
    )
    subprocess.run([*strace_command(trace.path), sys.executable, "-c", script], check=True)
    trace.read()
    assert trace.resolver_reads and trace.outside(), trace.path.read_text()


OTHER_WAYS_IN = {
    # uvicorn or gunicorn import the ASGI module; a request then loads a voice (Piper).
    "asgi": ["-c", "import voxhelm.asgi, piper"],
    "manage.py": ["manage.py", "shell", "-c", "import piper"],
    "library": ["-c", "from voxhelm.stt import vad; vad.warm_up()"],
}


@pytest.mark.parametrize("way", OTHER_WAYS_IN)
def test_other_ways_in_turn_telemetry_off_before_onnxruntime_loads(
    strace: None, tmp_path: Path, way: str
) -> None:
    """The ways in that skip the console scripts. The telemetry writes its id file as it
    initialises, before the process could do anything else; onnxruntime loading without it
    shows that the telemetry never started (the fleet above covers the minutes after)."""
    trace, env = place(tmp_path, way)
    command = [*strace_command(trace.path), sys.executable, *OTHER_WAYS_IN[way]]
    root = Path(__file__).resolve().parents[2]  # manage.py's folder
    env = process_env(trace.root, env)
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    trace.read()
    assert trace.onnxruntime_loaded_at is not None
    assert (trace.ses_writes, trace.ses_left, trace.outside(), trace.resolver_reads) == (
        [], [], [], []
    )  # fmt: skip


def test_an_onnxruntime_imported_before_voxhelm_is_quietened_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Library use where the host program imported onnxruntime first: too late for the
    variable. A stand-in module records the call, since the real one cannot be watched
    without letting its telemetry start."""
    calls: list[str] = []
    stand_in = SimpleNamespace(disable_telemetry_events=lambda: calls.append("disable"))
    for name in voxhelm.TELEMETRY_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", stand_in)
    with pytest.warns(RuntimeWarning, match="set ORT_DISABLE_TELEMETRY=1"):
        voxhelm.turn_off_telemetry()
    assert calls == ["disable"]
    assert (os.environ["ORT_DISABLE_TELEMETRY"], os.environ["PYANNOTE_METRICS_ENABLED"]) == (
        "1", "false"
    )  # fmt: skip


def test_an_operators_own_telemetry_settings_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "0")
    monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", "true")
    monkeypatch.setitem(sys.modules, "onnxruntime", SimpleNamespace())  # nothing to call
    voxhelm.turn_off_telemetry()
    assert (os.environ["ORT_DISABLE_TELEMETRY"], os.environ["PYANNOTE_METRICS_ENABLED"]) == (
        "0", "true"
    )  # fmt: skip

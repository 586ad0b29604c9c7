"""Voxhelm vs speaches, the best-known self-hosted OpenAI-compatible speech server, side by side.

Both servers run the same model (the bundled tiny.en, int8 on CPU) with their own defaults as
shipped (speaches: its batched pipeline with Silero VAD; Voxhelm: its windows), and are asked
through the official ``openai`` client, language ``en``. Runs alternate between the servers so
that machine noise hits both alike. Measured:

- long audio (``--long-seconds`` of Piper speech, one request): median wall time and WER;
- a short clip (three sentences, about 10 s): median wall time and WER;
- throughput: ``--clients`` concurrent clients sending ``--requests`` short clips each, to one
  server and then the other: requests per second and failed requests;
- RSS of each server (its whole process tree) after the runs, and the peak sampled meanwhile.

speaches is set up from a source snapshot (``--snapshot``, made with ``git archive`` at
commit 870e1e1) in a folder of its own outside the project (``--peer-dir``, reused by later
runs): extracted, installed with ``uv sync`` under Python 3.12 (its only supported version;
``--python``, else pyenv's newest 3.12, else ``python3.12`` on PATH), and given a Hugging Face
cache that links the bundled model files. The install is about 200 packages and 8 GB (CUDA
torch among them): far too heavy for CI, and never part of the test suite. Without the
snapshot, Python 3.12 or uv, or with ``--no-install`` before a first setup, the script says
why, writes ``{"skipped": true, "reason": ...}`` with ``--json``, and exits 0.

    uv run python bench/peer_speaches.py [--runs 5] [--long-seconds 150] [--clients 8]
        [--requests 5] [--setup-only] [--no-install] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync_overhead import PeakRss  # noqa: E402
from tests.conftest import PRODUCER_TOKEN, free_port, start_server, stop_process  # noqa: E402
from tests.speech import BOOK, EPISODE, SENTENCES, Speech, passage, word_error_rate  # noqa: E402

from voxhelm.stt.faster_whisper import bundled_model_path  # noqa: E402

PEER = "speaches-870e1e1"
PEER_COMMIT = "870e1e16a73452496e99d49f759eabd692a8e0e0"
# Where the bench machines keep peer snapshots; --snapshot names another.
SNAPSHOT_PLACES = (
    Path.home() / ".cache" / "voxhelm-bench" / f"{PEER}.tar.gz",
    Path("/work/shared/peers") / f"{PEER}.tar.gz",
)
# speaches picks its engine from the model card, so the local model needs one.
MODEL_ID = "Systran/faster-whisper-tiny.en"
MODEL_CARD = """\
---
library_name: ctranslate2
pipeline_tag: automatic-speech-recognition
language: en
license: mit
---
Whisper tiny.en for CTranslate2, the model Voxhelm bundles.
"""
MODEL_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
REVISION = "voxhelm-bundled-tiny-en"


class Skip(Exception):
    """speaches cannot be set up here; the message says why."""


@dataclass(frozen=True)
class Server:
    name: str
    client: OpenAI
    model: str
    pid: int


# -- setting speaches up ------------------------------------------------------------------


def find_python(given: Path | None) -> Path:
    candidates = [given] if given else []
    if not given:
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        found = sorted(
            pyenv.glob("3.12.*/bin/python3.12"),
            key=lambda p: tuple(int(n) for n in re.findall(r"\d+", p.parent.parent.name)),
        )
        candidates += reversed(found)
        on_path = shutil.which("python3.12")
        candidates += [Path(on_path)] if on_path else []
    for python in candidates:
        try:  # a pyenv shim is on PATH even where no 3.12 is selected: ask it
            version = subprocess.run(
                [str(python), "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if version == "(3, 12)":
            return python
    raise Skip("no Python 3.12 found (speaches needs exactly 3.12; --python names one)")


def find_snapshot(given: Path | None) -> Path:
    for path in [given] if given else SNAPSHOT_PLACES:
        if path.is_file():
            return path
    where = given or " or ".join(str(p) for p in SNAPSHOT_PLACES)
    raise Skip(f"no speaches snapshot at {where}")


def extract(snapshot: Path, folder: Path) -> None:
    with tarfile.open(snapshot) as archive:
        commit = archive.pax_headers.get("comment")  # git archive records its commit here
        if commit != PEER_COMMIT:
            print(f"note: {snapshot} is commit {commit}, not {PEER_COMMIT}", file=sys.stderr)
        archive.extractall(folder, filter="data")


def set_up(folder: Path, snapshot: Path | None, python: Path | None, install: bool) -> Path:
    """The speaches source folder with its environment, extracted and installed if need be."""
    source = folder / "speaches"
    installed = (source / ".venv" / "bin" / "uvicorn").is_file()
    if not install:
        if not installed:
            raise Skip(f"speaches is not set up in {folder} (run this script alone once)")
        return source
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise Skip("uv not found")
    interpreter = find_python(python)
    if not (source / "pyproject.toml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        extract(find_snapshot(snapshot), folder)
    print(f"installing speaches in {source} with {interpreter}", file=sys.stderr, flush=True)
    subprocess.run(
        [uv, "sync", "--frozen", "--no-dev", "--python", str(interpreter)],
        cwd=source,
        env={**project_free(os.environ), "UV_PYTHON_DOWNLOADS": "never"},
        check=True,
    )
    return source


def project_free(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without the pointers to Voxhelm's own virtual environment."""
    return {k: v for k, v in environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}


def build_model_cache(hf_home: Path) -> None:
    """A Hugging Face cache holding the bundled model under MODEL_ID, as links."""
    repo = hf_home / "hub" / f"models--{MODEL_ID.replace('/', '--')}"
    shutil.rmtree(repo, ignore_errors=True)
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    for name in MODEL_FILES:
        (snapshot / name).symlink_to(bundled_model_path() / name)
    (snapshot / "README.md").write_text(MODEL_CARD)


@contextmanager
def speaches_server(source: Path, folder: Path) -> Iterator[Server]:
    hf_home = folder / "hf"
    build_model_cache(hf_home)
    port = free_port()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(
        {
            "HF_HOME": str(hf_home),
            "HF_HUB_OFFLINE": "1",
            "WHISPER__INFERENCE_DEVICE": "cpu",
            "WHISPER__COMPUTE_TYPE": "int8",
            "DO_NOT_TRACK": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
    )
    log_path = folder / "server.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(  # it reads model_aliases.json from its working directory
            [str(source / ".venv" / "bin" / "uvicorn"), "--factory", "speaches.main:create_app",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=source,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # it imports torch and gradio: slow at low priority
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"speaches did not start:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        client = OpenAI(base_url=f"{url}/v1", api_key="none", timeout=900, max_retries=0)
        yield Server("speaches", client, MODEL_ID, process.pid)
    finally:
        stop_process(process)


@contextmanager
def voxhelm_server(root: Path) -> Iterator[Server]:
    server = start_server(root, {"VOXHELM_FASTERWHISPER_COMPUTE_TYPE": "int8"}, command="web")
    try:
        client = OpenAI(
            base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, timeout=900, max_retries=0
        )
        yield Server("voxhelm", client, "whisper-1", server.process.pid)
    finally:
        server.stop()


# -- measuring ----------------------------------------------------------------------------


def long_speech(seconds: float) -> Speech:
    """Whole sentences of BOOK and EPISODE, over and over, until ``seconds`` are spoken."""
    pool = BOOK + EPISODE
    sentences: list[str] = []
    spoken = 0.0
    while spoken < seconds:
        sentences.append(pool[len(sentences) % len(pool)])
        spoken = passage((sentences[-1],)).duration + spoken
    return passage(tuple(sentences))


def transcribe(server: Server, data: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    result = server.client.audio.transcriptions.create(
        model=server.model, file=("speech.wav", data, "audio/wav"), language="en"
    )
    return time.perf_counter() - started, result.text


def interleaved(servers: list[Server], speech: Speech, runs: int) -> dict[str, dict[str, float]]:
    """Median wall seconds and mean WER per server, the servers alternating run by run."""
    data = speech.wav_bytes()
    walls: dict[str, list[float]] = {s.name: [] for s in servers}
    wers: dict[str, list[float]] = {s.name: [] for s in servers}
    for run in range(runs):
        for server in servers if run % 2 == 0 else list(reversed(servers)):
            seconds, text = transcribe(server, data)
            walls[server.name].append(seconds)
            wers[server.name].append(word_error_rate(speech.text, text))
    return {
        name: {"median_seconds": statistics.median(walls[name]), "wer": statistics.mean(wers[name])}
        for name in walls
    }


def throughput(server: Server, data: bytes, clients: int, requests: int) -> dict[str, float]:
    """``clients`` threads sending ``requests`` clips each: completed requests/s, errors."""
    errors = 0
    lock = threading.Lock()

    def client_loop(_: int) -> None:
        nonlocal errors
        for _ in range(requests):
            try:
                transcribe(server, data)
            except Exception as exc:  # a refused or failed request is a figure, not a crash
                print(f"{server.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                with lock:
                    errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    wall = time.perf_counter() - started
    return {"requests_per_second": (clients * requests - errors) / wall, "errors": errors}


class TreeRss(PeakRss):
    """Samples the summed RSS of a process and its children every 50 ms."""

    def sample(self) -> int:
        total = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def now_and_peak(self) -> tuple[int, int]:
        """RSS now and the peak, in bytes; stops the sampling."""
        self.halt()
        now = self.sample()
        return now, max(self.peak, now)


def measure(args: argparse.Namespace, servers: list[Server]) -> dict[str, object]:
    long, short = long_speech(args.long_seconds), passage(SENTENCES)
    rss = {s.name: TreeRss(s.pid) for s in servers}
    for server in servers:  # warm-up: model load, VAD, first-call costs
        transcribe(server, short.wav_bytes())
        transcribe(server, long.wav_bytes())
    long_figures = interleaved(servers, long, args.runs)
    short_figures = interleaved(servers, short, args.runs)
    loads = {s.name: throughput(s, short.wav_bytes(), args.clients, args.requests) for s in servers}
    sides: dict[str, dict[str, float]] = {}
    for name, sampler in rss.items():
        now, peak = sampler.now_and_peak()
        sides[name] = {
            "long_median_seconds": round(long_figures[name]["median_seconds"], 3),
            "long_wer": round(long_figures[name]["wer"], 4),
            "short_median_seconds": round(short_figures[name]["median_seconds"], 3),
            "short_wer": round(short_figures[name]["wer"], 4),
            "requests_per_second": round(loads[name]["requests_per_second"], 3),
            "errors": int(loads[name]["errors"]),
            "rss_mb": round(now / 2**20),
            "peak_rss_mb": round(peak / 2**20),
        }
    mine, peer = sides["voxhelm"], sides["speaches"]
    return {
        "peer": f"speaches {PEER_COMMIT[:7]}",
        "long_audio_seconds": round(long.duration, 1),
        "short_audio_seconds": round(short.duration, 1),
        "runs": args.runs,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "servers": sides,
        "long_speedup": round(peer["long_median_seconds"] / mine["long_median_seconds"], 3),
        "short_speedup": round(peer["short_median_seconds"] / mine["short_median_seconds"], 3),
        "throughput_ratio": round(peer_ratio(mine, peer, "requests_per_second"), 3),
        "rss_ratio": round(mine["peak_rss_mb"] / peer["peak_rss_mb"], 3),
    }


def peer_ratio(mine: dict[str, float], peer: dict[str, float], key: str) -> float:
    return mine[key] / peer[key] if peer[key] else float("inf")


def print_table(figures: dict[str, object]) -> None:
    sides = figures["servers"]
    assert isinstance(sides, dict)
    print(
        f"long audio {figures['long_audio_seconds']} s, short clip "
        f"{figures['short_audio_seconds']} s of Piper speech, tiny.en int8 CPU, "
        f"runs: {figures['runs']}; throughput {figures['clients']} clients x "
        f"{figures['requests_per_client']} short clips\n"
    )
    rows: list[tuple[str, Callable[[dict[str, float]], str]]] = [
        ("long: median wall", lambda s: f"{s['long_median_seconds']:.2f} s"),
        ("long: WER", lambda s: f"{s['long_wer']:.2%}"),
        ("short: median wall", lambda s: f"{s['short_median_seconds']:.2f} s"),
        ("short: WER", lambda s: f"{s['short_wer']:.2%}"),
        ("throughput", lambda s: f"{s['requests_per_second']:.2f} req/s, {s['errors']} errors"),
        ("RSS after the runs", lambda s: f"{s['rss_mb']} MB"),
        ("peak RSS", lambda s: f"{s['peak_rss_mb']} MB"),
    ]
    print("| measure | Voxhelm | speaches |")
    print("|---|---|---|")
    for label, cell in rows:
        print(f"| {label} | {cell(sides['voxhelm'])} | {cell(sides['speaches'])} |")
    print(
        f"\nlong speedup speaches/Voxhelm: {figures['long_speedup']:.2f}x (goal >= 1.3)"
        f"\nshort speedup speaches/Voxhelm: {figures['short_speedup']:.2f}x (goal >= 1.5)"
        f"\nthroughput Voxhelm/speaches: {figures['throughput_ratio']:.2f}x (goal >= 1.2)"
        f"\npeak RSS Voxhelm/speaches: {figures['rss_ratio']:.2f} (goal <= 0.33)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--long-seconds", type=float, default=150.0, help="long audio length")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=5, help="short clips per client")
    parser.add_argument(
        "--peer-dir",
        type=Path,
        default=Path.home() / ".cache" / "voxhelm-bench" / PEER,
        help="where speaches is extracted and installed (kept for later runs)",
    )
    parser.add_argument("--snapshot", type=Path, help="the speaches source tarball")
    parser.add_argument("--python", type=Path, help="a Python 3.12 for speaches")
    parser.add_argument("--no-install", action="store_true", help="skip unless already set up")
    parser.add_argument("--setup-only", action="store_true", help="set speaches up and exit")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    try:
        source = set_up(args.peer_dir, args.snapshot, args.python, not args.no_install)
    except Skip as skip:
        print(f"skipped: {skip}")
        if args.json:
            args.json.write_text(json.dumps({"skipped": True, "reason": str(skip)}, indent=2))
        return
    if args.setup_only:
        print(f"speaches is set up in {source}")
        return
    with (
        tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp,
        voxhelm_server(Path(tmp)) as mine,
        speaches_server(source, args.peer_dir) as peer,
    ):
        figures = measure(args, [mine, peer])
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

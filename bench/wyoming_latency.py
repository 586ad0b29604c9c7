"""Wyoming latency: ``voxhelm-wyoming-stt`` vs ``wyoming-faster-whisper``, idle and under load.

Both servers run the same model directory (the bundled tiny.en), int8 on CPU, beam size 5,
language ``en``. A client sends 2-5 s Piper voice commands as Home Assistant does: in
real time, 1024-sample chunks, with 0.8 s of trailing silence before ``audio-stop`` (the
silence Home Assistant's own VAD waits for). The time measured is end of audio (the
``audio-stop`` event sent) to ``transcript`` received. Runs alternate between the servers
so that machine noise hits both alike.

Each run speaks its command anew (Piper varies each rendering a little) and sends that
same rendering to both servers. Whisper's choice between two close words ("in" or "and")
can flip on a difference in the last bit of a sample, so a fixed set of renderings
would let one unlucky rendering decide the accuracy comparison.

"Under load" runs a long non-interactive transcription in a separate process, over and
over, exactly as the sync HTTP endpoint does it (``voxhelm.stt.windows`` with the
``non-interactive`` lane, in the same lane directory as the Voxhelm server).
``wyoming-faster-whisper`` knows no lanes, so there the load simply competes for the CPU.

Voxhelm decodes early (during the trailing silence) unless ``--no-early-decode``.

    uv run python bench/wyoming_latency.py [--runs 50] [--no-realtime] [--no-early-decode]
        [--warm-up 4] [--json figures.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port, process_env  # noqa: E402
from tests.speech import BOOK, Speech, passage, render, word_error_rate  # noqa: E402
from tests.wyoming_server.conftest import describe, start_wyoming  # noqa: E402
from wyoming.asr import Transcribe  # noqa: E402
from wyoming.audio import AudioChunk, AudioStart, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402

from voxhelm.stt.faster_whisper import bundled_model_path  # noqa: E402

COMMANDS = (
    "Please turn on the lights in the kitchen and the hallway.",
    "Set the living room temperature to twenty one degrees.",
    "What is the weather like tomorrow morning in Berlin?",
    "Open the garage door and turn on the porch light.",
    "Play some relaxing music in the bedroom.",
    "Turn off all the lights downstairs please.",
    "Add milk, eggs and bread to my shopping list.",
    "Close the blinds in the office and the study.",
)
TRAILING_SILENCE = 0.8
CHUNK = 1024


def command(run: int) -> Speech:
    """A new rendering of the run's command, with the trailing silence."""
    speech = render(COMMANDS[run % len(COMMANDS)], TRAILING_SILENCE)
    speech_seconds = speech.duration - TRAILING_SILENCE
    assert 2.0 <= speech_seconds <= 5.0, (speech.text, speech_seconds)
    return speech


async def run_command(port: int, speech: Speech, realtime: bool) -> tuple[float, str]:
    """Stream one command; seconds from ``audio-stop`` to ``transcript``, and its text."""
    rate = speech.sample_rate
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        started = time.perf_counter()
        for index, offset in enumerate(range(0, len(speech.samples), CHUNK)):
            if realtime:
                due = started + index * CHUNK / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            data = speech.samples[offset : offset + CHUNK].tobytes()
            await client.write_event(AudioChunk(rate, 2, 1, data).event())
        await client.write_event(AudioStop().event())
        stopped = time.perf_counter()
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            if event is None:
                raise RuntimeError("the server closed without a transcript")
            if event.type == "transcript":
                return time.perf_counter() - stopped, str(event.data.get("text", ""))
            if event.type == "error":
                raise RuntimeError(f"server error: {event.data}")


@contextmanager
def faster_whisper_server(root: Path) -> Iterator[int]:
    port = free_port()
    log = (root / "wfw.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "wyoming_faster_whisper",
            "--uri", f"tcp://127.0.0.1:{port}",
            "--model", str(bundled_model_path()),
            "--data-dir", str(root / "wfw-data"),
            "--stt-library", "faster-whisper",
            "--compute-type", "int8",
            "--beam-size", "5",
            "--language", "en",
        ],
        env=process_env(root),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError((root / "wfw.log").read_text())
            try:
                asyncio.run(describe(port))
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextmanager
def load(var_dir: Path) -> Iterator[None]:
    """A separate process transcribing a long recording, window by window, over and over."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--load-worker"],
        env={**process_env(var_dir.parent), "VOXHELM_VAR_DIR": str(var_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "loading"
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def load_worker() -> None:
    from voxhelm import audio
    from voxhelm.capacity import BATCH
    from voxhelm.config import load_config
    from voxhelm.stt import windows
    from voxhelm.stt.base import TranscriptionRequest

    config = load_config()
    decoded = audio.decode(passage(BOOK, 0.5).wav_bytes())
    windows.transcribe(decoded, "auto", TranscriptionRequest(), config, admission=BATCH)
    print("loading", flush=True)
    while True:
        windows.transcribe(decoded, "auto", TranscriptionRequest(), config, admission=BATCH)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def measure(
    ports: dict[str, int], runs: int, realtime: bool
) -> dict[str, tuple[list[float], float]]:
    latencies: dict[str, list[float]] = {name: [] for name in ports}
    errors: dict[str, list[float]] = {name: [] for name in ports}
    for run in range(runs):
        speech = command(run)
        order = list(ports.items()) if run % 2 == 0 else list(reversed(ports.items()))
        texts: dict[str, str] = {}
        for name, port in order:
            seconds, texts[name] = asyncio.run(run_command(port, speech, realtime))
            latencies[name].append(seconds)
            errors[name].append(word_error_rate(speech.text, texts[name]))
        if len({errors[name][-1] for name in ports}) > 1:  # the servers heard it differently
            heard = "; ".join(f"{name}: {text!r}" for name, text in texts.items())
            print(f"run {run}, {speech.text!r}: {heard}", file=sys.stderr, flush=True)
    return {name: (latencies[name], statistics.mean(errors[name])) for name in ports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--no-realtime", action="store_true", help="send audio at full speed")
    parser.add_argument(
        "--no-early-decode",
        action="store_true",
        help="Voxhelm decodes only after audio-stop, as wyoming-faster-whisper does",
    )
    parser.add_argument("--warm-up", type=int, default=4, help="untimed runs per server first")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--load-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_worker:
        load_worker()
        return
    realtime = not args.no_realtime
    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp:
        root = Path(tmp)
        (root / "voxhelm").mkdir()
        env = {
            "VOXHELM_FASTERWHISPER_COMPUTE_TYPE": "int8",
            "VOXHELM_WYOMING_STT_LANGUAGE": "en",
            "VOXHELM_WYOMING_STT_EARLY_DECODE": "false" if args.no_early_decode else "true",
        }
        voxhelm = start_wyoming(root / "voxhelm", env)
        try:
            with faster_whisper_server(root) as wfw_port:
                ports = {"voxhelm": voxhelm.port, "wyoming-faster-whisper": wfw_port}
                measure(ports, args.warm_up, realtime)  # warm-up: models, VAD, caches
                idle = measure(ports, args.runs, realtime)
                with load(root / "voxhelm" / "var"):
                    loaded = measure(ports, args.runs, realtime)
        finally:
            voxhelm.stop()
    print_table(idle, loaded, args.runs, realtime)
    if args.json:
        figures = {
            "runs": args.runs,
            "realtime": realtime,
            "early_decode": not args.no_early_decode,
            **summarize(idle, loaded),
        }
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


def summarize(
    idle: dict[str, tuple[list[float], float]], loaded: dict[str, tuple[list[float], float]]
) -> dict[str, object]:
    """Per server: p50/p95 idle and under load (seconds), their ratio, mean WER; and the
    peer / Voxhelm p50 ratios (above 1: Voxhelm is faster)."""
    servers: dict[str, dict[str, float]] = {}
    for name in idle:
        i, l_ = idle[name][0], loaded[name][0]
        servers[name] = {
            "idle_p50": round(percentile(i, 50), 4),
            "idle_p95": round(percentile(i, 95), 4),
            "load_p50": round(percentile(l_, 50), 4),
            "load_p95": round(percentile(l_, 95), 4),
            "load_over_idle_p50": round(percentile(l_, 50) / percentile(i, 50), 3),
            "wer": round(statistics.mean([idle[name][1], loaded[name][1]]), 4),
        }
    mine, peer = servers["voxhelm"], servers["wyoming-faster-whisper"]
    return {
        "servers": servers,
        "peer_over_voxhelm_idle_p50": round(peer["idle_p50"] / mine["idle_p50"], 3),
        "peer_over_voxhelm_load_p50": round(peer["load_p50"] / mine["load_p50"], 3),
    }


def print_table(
    idle: dict[str, tuple[list[float], float]],
    loaded: dict[str, tuple[list[float], float]],
    runs: int,
    realtime: bool,
) -> None:
    print(f"\n{runs} runs per cell, {os.cpu_count()} CPUs, realtime streaming: {realtime}")
    print("end of audio -> transcript, seconds\n")
    print("| server | idle p50 | idle p95 | load p50 | load p95 | load/idle p50 | mean WER |")
    print("|---|---|---|---|---|---|---|")
    for name in idle:
        i, l_ = idle[name][0], loaded[name][0]
        wer = statistics.mean([idle[name][1], loaded[name][1]])
        print(
            f"| {name} | {percentile(i, 50):.3f} | {percentile(i, 95):.3f} | "
            f"{percentile(l_, 50):.3f} | {percentile(l_, 95):.3f} | "
            f"{percentile(l_, 50) / percentile(i, 50):.2f}x | {wer:.3f} |"
        )
    names = list(idle)
    if len(names) == 2:
        a, b = names
        idle_ratio = percentile(idle[b][0], 50) / percentile(idle[a][0], 50)
        load_ratio = percentile(loaded[b][0], 50) / percentile(loaded[a][0], 50)
        print(f"\n{b} / {a}, p50: idle {idle_ratio:.2f}x, load {load_ratio:.2f}x")


if __name__ == "__main__":
    main()

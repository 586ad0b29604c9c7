"""Cold start: ``voxhelm serve`` spawned on a fresh state directory to its first transcription.

Each run starts ``voxhelm serve`` (as ``python -m voxhelm.cli serve``) with an empty var dir
(so migrations, the generated secret and the model load all count) on a free loopback port,
polls ``/v1/health`` every 50 ms until the server answers at all (reported as "listening"),
then POSTs a short Piper clip to ``/v1/audio/transcriptions`` (again every 50 ms until one
answers 200 with text). The time measured is from spawning the process to that answer.
Median over ``--runs`` (goal <= 5 s).

    uv run python bench/cold_start.py [--runs 3] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PRODUCER_TOKEN, free_port, process_env, stop_process  # noqa: E402
from tests.speech import SENTENCES, passage  # noqa: E402

POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 180.0


def cold_start(root: Path, clip: bytes) -> tuple[float, float, str]:
    """Seconds to the first HTTP answer and to the first transcript, and its text."""
    port = free_port()
    log = (root / "server.log").open("w", encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {PRODUCER_TOKEN}"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "voxhelm.cli", "serve", "--port", str(port)],
        env=process_env(root),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    listening = 0.0
    try:
        while time.perf_counter() - started < TIMEOUT_SECONDS:
            if process.poll() is not None:
                raise RuntimeError((root / "server.log").read_text(encoding="utf-8"))
            try:
                if not listening:
                    httpx.get(f"{url}/v1/health", headers=headers, timeout=TIMEOUT_SECONDS)
                    listening = time.perf_counter() - started
                response = httpx.post(
                    f"{url}/v1/audio/transcriptions",
                    headers=headers,
                    files={"file": ("clip.wav", clip, "audio/wav")},
                    data={"model": "whisper-1"},
                    timeout=TIMEOUT_SECONDS,
                )
            except httpx.TransportError:
                time.sleep(POLL_SECONDS)
                continue
            if response.status_code == 200 and response.json().get("text"):
                return listening, time.perf_counter() - started, response.json()["text"]
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"no transcript within {TIMEOUT_SECONDS:.0f} s")
    finally:
        stop_process(process)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    clip = passage(SENTENCES[:1]).wav_bytes()
    listening: list[float] = []
    first: list[float] = []
    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp:
        for run in range(args.runs):
            root = Path(tmp) / f"run-{run}"
            root.mkdir()
            up, done, text = cold_start(root, clip)
            listening.append(up)
            first.append(done)
            print(f"run {run + 1}: listening {up:.2f} s, first transcript {done:.2f} s: {text!r}")
    print(
        f"\nmedian of {args.runs}: listening {statistics.median(listening):.2f} s, "
        f"first transcription {statistics.median(first):.2f} s (goal <= 5 s)"
    )
    if args.json:
        figures = {
            "runs": args.runs,
            "listening_seconds": [round(value, 3) for value in listening],
            "first_transcription_seconds": [round(value, 3) for value in first],
            "median_listening_seconds": round(statistics.median(listening), 3),
            "median_seconds": round(statistics.median(first), 3),
        }
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

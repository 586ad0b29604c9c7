"""Memory: resident set size of ``voxhelm serve`` with tiny.en loaded, and its growth in a soak.

Starts ``voxhelm serve`` on a fresh state directory and a free loopback port, waits until
health reports the model ready, transcribes one Piper clip over HTTP and reads the RSS of
the process tree (the server and any children, summed; goal <= 450 MB). Then the soak: for
``--soak-minutes``, sync transcriptions one after another over a rotation of clips (a short
command, a sentence, half a minute of speech), sampling the tree's RSS after each. The
first fifth of the soak is warm-up (every engine worker meets every clip length; RSS moves
by tens of MB from one request to the next as buffers are reused), so growth compares the
median RSS of the first fifth after warm-up with that of the last fifth (goal < 10 % over
a 10-minute soak), like the soak test in ``tests/hardening/test_soak.py``.

    uv run python bench/memory.py [--soak-minutes 10] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import start_server  # noqa: E402
from tests.speech import EPISODE, SENTENCES, passage, synthesize  # noqa: E402

MB = 2**20
WARM_UP_FRACTION = 0.2  # of the soak, left out of the growth figure


def tree_rss(pid: int) -> int:
    """RSS of a process and all its descendants, in bytes."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return int(total)


def transcribe(client: httpx.Client, clip: bytes) -> None:
    response = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("clip.wav", clip, "audio/wav")},
        data={"model": "whisper-1"},
    )
    response.raise_for_status()
    assert response.json()["text"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    clips = [
        synthesize("Turn off all the lights downstairs please.").wav_bytes(),
        passage(SENTENCES[:2]).wav_bytes(),
        passage(EPISODE).wav_bytes(),
    ]
    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp:
        server = start_server(Path(tmp), command="serve")
        pid = server.process.pid
        try:
            with server.client() as client:
                idle = tree_rss(pid)
                transcribe(client, clips[0])
                loaded = tree_rss(pid)
                samples: list[tuple[float, int]] = []  # (seconds into the soak, RSS)
                requests = 0
                started = time.monotonic()
                while time.monotonic() - started < args.soak_minutes * 60:
                    transcribe(client, clips[requests % len(clips)])
                    requests += 1
                    samples.append((time.monotonic() - started, tree_rss(pid)))
                soaked = time.monotonic() - started
        finally:
            server.stop()

    after = [rss for at, rss in samples if at >= soaked * WARM_UP_FRACTION]
    window = max(1, len(after) // 5)
    first, last = statistics.median(after[:window]), statistics.median(after[-window:])
    growth = 100 * (last - first) / first
    peak = max(rss for _, rss in samples)
    print("| measure | value |")
    print("|---|---|")
    print(f"| RSS of the serve process tree, health ready (model warmed up) | {idle / MB:.0f} MB |")
    print(f"| after one transcription (tiny.en loaded) | {loaded / MB:.0f} MB |")
    print(f"| soak: {soaked / 60:.1f} min, {requests} sync transcriptions | |")
    print(f"| soak: median RSS of the first / last fifth after warm-up, peak | "
          f"{first / MB:.0f} / {last / MB:.0f} / {peak / MB:.0f} MB |")  # fmt: skip
    print(f"| soak growth | {growth:+.1f} % |")
    if args.json:
        figures = {
            "rss_ready_mb": round(idle / MB, 1),
            "rss_loaded_mb": round(loaded / MB, 1),
            "soak_minutes": round(soaked / 60, 2),
            "soak_requests": requests,
            "soak_start_mb": round(first / MB, 1),
            "soak_end_mb": round(last / MB, 1),
            "soak_peak_mb": round(peak / MB, 1),
            "soak_growth_percent": round(growth, 2),
        }
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

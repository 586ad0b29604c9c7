"""Long-form: an hour-long recording through a batch job vs one plain faster-whisper pass.

The recording is assembled from Piper sentences (the bundled voice) in shuffled order with
pauses of 0.4-1.2 s, no sentence repeated within four places, encoded as MP3 and served
from a loopback HTTP server. Side by side in one run, on the same file and model (bundled
tiny.en, int8 on CPU):

* the plain pass: ``WhisperModel(...).transcribe(path)`` in this process, with the decoding
  options Voxhelm uses (beam, temperatures, no previous-text conditioning), all segments
  consumed;
* a batch job on a real ``voxhelm serve`` (download, decode, chunks, stitching, artifacts:
  text + json), once per ``--workers`` value (``VOXHELM_CHUNK_WORKERS``), submit to
  ``succeeded``;
* with ``--remote``, the same job run by one ``voxhelm-remote-worker`` (``voxhelm web`` in
  ``remote_pull`` mode, a real S3 server for the artifacts): a job runs on one worker, which
  transcribes its chunks side by side, two at a time.

Prints wall times, realtime factors, the job/plain ratio (goal <= 0.9) and the word error
rate of each transcript against the script (stitched within 1 point of single pass).

    uv run python bench/longform.py [--minutes 60] [--workers 1,2] [--remote] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ServerProcess, start_server  # noqa: E402
from tests.jobs.media_server import serve_media  # noqa: E402
from tests.media import speech_in  # noqa: E402
from tests.speech import BOOK, EPISODE, Speech, synthesize, word_error_rate  # noqa: E402

from voxhelm.config import load_config  # noqa: E402
from voxhelm.stt.faster_whisper import TEMPERATURE_SCHEDULE, bundled_model_path  # noqa: E402

SERVER_ENV = {
    "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
    "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
    "VOXHELM_MAX_AUDIO_SECONDS": "14400",
}


def recording(minutes: float, seed: int = 7) -> Speech:
    """Shuffled sentences with varied pauses until ``minutes`` are reached."""
    rng = random.Random(seed)
    sentences = list(BOOK + EPISODE)
    spoken = {s: synthesize(s) for s in sentences}
    rate = spoken[sentences[0]].sample_rate
    order: list[str] = []
    parts: list[np.ndarray] = []
    total = 0
    while total < minutes * 60 * rate:
        choices = [s for s in sentences if s not in order[-4:]]
        sentence = rng.choice(choices)
        pause = np.zeros(int(rng.uniform(0.4, 1.2) * rate), dtype=np.int16)
        parts += [spoken[sentence].samples, pause]
        order.append(sentence)
        total += len(spoken[sentence].samples) + len(pause)
    return Speech(" ".join(order), np.concatenate(parts), rate)


def plain_pass(path: Path) -> tuple[float, str]:
    """One plain in-process faster-whisper pass (model loaded beforehand, not timed)."""
    from faster_whisper import WhisperModel

    fw = load_config({}).stt.fasterwhisper
    model = WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8")
    started = time.perf_counter()
    segments, _info = model.transcribe(
        str(path),
        beam_size=fw.beam_size,
        temperature=list(TEMPERATURE_SCHEDULE),
        condition_on_previous_text=fw.condition_on_previous_text,
        language="en",
    )
    text = " ".join(segment.text.strip() for segment in segments)
    return time.perf_counter() - started, text


def job_pass(url: str, workers: int, root: Path) -> dict[str, Any]:
    """Submit a transcription job to a fresh ``voxhelm serve`` and wait for it."""
    env = {**SERVER_ENV, "VOXHELM_CHUNK_WORKERS": str(workers)}
    server = start_server(root, env, timeout=180)
    try:
        return timed_job(server, url)
    finally:
        server.stop()


def remote_pass(url: str, root: Path) -> dict[str, Any]:
    """The same job through ``voxhelm web`` and one remote pull worker (S3 artifacts)."""
    from tests.s3server import start_s3
    from tests.workers.cluster import cluster_env, start_remote_worker, start_web

    s3 = start_s3(root / "s3")
    try:
        env = {**cluster_env(s3, s3.new_bucket(), lease_seconds=300), **SERVER_ENV}
        server = start_web(root / "web", env)
        worker = None
        try:
            worker = start_remote_worker(root / "workers", "atlas", server, env)
            return timed_job(server, url)
        finally:
            if worker is not None:
                worker.stop()
            server.stop()
    finally:
        s3.stop()


def timed_job(server: ServerProcess, url: str) -> dict[str, Any]:
    """Submit a transcription job and wait for it: wall time, text, what progress showed."""
    with server.client() as client:
        body = {
            "job_type": "transcribe",
            "input": {"kind": "url", "url": url},
            "output": {"formats": ["text", "json"]},
        }
        started = time.perf_counter()
        response = client.post("/v1/jobs", json=body)
        response.raise_for_status()
        job_id = response.json()["id"]
        percents: list[int] = []
        while True:
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["state"] in ("succeeded", "failed", "canceled"):
                break
            percents.append(job["progress"]["percent"])
            time.sleep(0.5)
        wall = time.perf_counter() - started
        if job["state"] != "succeeded":
            raise RuntimeError(f"job {job['state']}: {job.get('error')}")
        flags = client.get(f"/v1/jobs/{job_id}/artifacts/transcript.json").json()
    return {
        "wall_seconds": round(wall, 2),
        "text": job["result"]["text"],
        "progress_samples": len(percents),
        "progress_monotonic": percents == sorted(percents),
        "no_speech_ratio": flags["voxhelm_flags"]["no_speech_ratio"],
        "repaired_spans": len(flags["voxhelm_flags"]["repaired"]),
        "suspect_spans": len(flags["voxhelm_flags"]["suspect"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--workers", default="1,2", help="comma-separated chunk worker counts")
    parser.add_argument("--remote", action="store_true", help="also one remote pull worker")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    counts = [int(part) for part in args.workers.split(",") if part.strip()]

    speech = recording(args.minutes)
    minutes = speech.duration / 60
    print(f"recording: {minutes:.1f} min of Piper speech", flush=True)
    with tempfile.TemporaryDirectory(prefix="voxhelm-longform-") as folder, serve_media() as media:
        root = Path(folder)
        mp3 = speech_in("mp3", speech)
        path = root / "episode.mp3"
        path.write_bytes(mp3)
        url = media.add("/episode.mp3", "audio/mpeg", mp3)
        plain_seconds, plain_text = plain_pass(path)
        plain_wer = word_error_rate(speech.text, plain_text)
        print(f"plain pass: {plain_seconds:.1f} s, WER {plain_wer:.3f}", flush=True)
        jobs: dict[str, dict[str, Any]] = {}
        runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (f"{count} chunk worker(s)", functools.partial(job_pass, url, count, root / str(count)))
            for count in counts
        ]
        if args.remote:
            runs.append(("one remote worker", functools.partial(remote_pass, url, root / "remote")))
        for label, run in runs:
            result = run()
            result["wer"] = round(word_error_rate(speech.text, result.pop("text")), 4)
            result["ratio"] = round(result["wall_seconds"] / plain_seconds, 3)
            jobs[label] = result
            print(
                f"job, {label}: {result['wall_seconds']:.1f} s, "
                f"ratio {result['ratio']:.2f}, WER {result['wer']:.3f}",
                flush=True,
            )

    audio_seconds = speech.duration
    print()
    print("| run | wall | realtime factor | WER | ratio to plain (goal <= 0.9) |")
    print("|---|---|---|---|---|")
    print(
        f"| plain faster-whisper pass | {plain_seconds:.1f} s | "
        f"{audio_seconds / plain_seconds:.1f}x | {plain_wer:.3%} | 1 |"
    )
    for label, result in jobs.items():
        print(
            f"| batch job, {label} | {result['wall_seconds']:.1f} s | "
            f"{audio_seconds / result['wall_seconds']:.1f}x | {result['wer']:.3%} | "
            f"{result['ratio']:.2f} |"
        )
    best = min(jobs.values(), key=lambda r: r["wall_seconds"]) if jobs else None
    figures = {
        "audio_minutes": round(minutes, 2),
        "plain_seconds": round(plain_seconds, 2),
        "plain_wer": round(plain_wer, 4),
        "jobs": jobs,
        "ratio": best["ratio"] if best else None,
        "wer_delta_points": round((best["wer"] - plain_wer) * 100, 2) if best else None,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

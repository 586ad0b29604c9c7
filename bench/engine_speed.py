"""Engine speed: faster-whisper's plain ``WhisperModel.transcribe`` vs its batched pipeline.

About two minutes of Piper speech (the bundled voice), the bundled tiny.en model, int8 on
CPU, one loaded model for both sides, Voxhelm's decoding options (beam size, temperature
schedule, no previous-text conditioning), language ``en``. The audio is decoded once to
16 kHz float32, so both sides time the engine alone. ``faster_whisper.BatchedInferencePipeline``
splits the audio at pauses (its Silero VAD) and decodes ``--batch-size`` pieces at a time.
Runs alternate between the two sides so that machine noise hits both alike.

Prints the median wall times, realtime factors (audio seconds per wall second), the speed
ratio unbatched / batched (goal for batch jobs >= 1.3) and the word error rate of each.

    uv run python bench/engine_speed.py [--runs 3] [--seconds 120] [--batch-size 8]
        [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync_overhead import raw_engine, speech_of  # noqa: E402
from tests.speech import word_error_rate  # noqa: E402

from voxhelm import audio  # noqa: E402
from voxhelm.config import load_config  # noqa: E402
from voxhelm.stt.faster_whisper import TEMPERATURE_SCHEDULE  # noqa: E402


def timed(transcribe: Any, samples: np.ndarray, **options: Any) -> tuple[float, str]:
    """Seconds to consume every segment of one call, and the text."""
    fw = load_config({}).stt.fasterwhisper
    started = time.perf_counter()
    segments, _info = transcribe(
        samples,
        language="en",
        beam_size=fw.beam_size,
        temperature=list(TEMPERATURE_SCHEDULE),
        condition_on_previous_text=fw.condition_on_previous_text,
        **options,
    )
    text = " ".join(segment.text.strip() for segment in segments)
    return time.perf_counter() - started, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=120.0, help="audio length")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from faster_whisper import BatchedInferencePipeline

    speech = speech_of(args.seconds)
    samples = audio.decode(speech.wav_bytes()).samples
    duration = len(samples) / audio.SAMPLE_RATE
    model = raw_engine()
    batched = BatchedInferencePipeline(model)
    vad_filter = load_config({}).stt.fasterwhisper.vad_filter
    sides = {
        "unbatched": lambda: timed(model.transcribe, samples, vad_filter=vad_filter),
        "batched": lambda: timed(batched.transcribe, samples, batch_size=args.batch_size),
    }
    for run in sides.values():
        run()  # warm-up: first-call costs, VAD model load
    walls: dict[str, list[float]] = {name: [] for name in sides}
    texts: dict[str, str] = {}
    for index in range(args.runs):
        order = list(sides.items()) if index % 2 == 0 else list(reversed(sides.items()))
        for name, run in order:
            seconds, texts[name] = run()
            walls[name].append(seconds)

    medians = {name: statistics.median(values) for name, values in walls.items()}
    wers = {name: word_error_rate(speech.text, text) for name, text in texts.items()}
    ratio = medians["unbatched"] / medians["batched"]
    print(
        f"audio: {duration:.1f} s Piper speech, model tiny.en int8 CPU, runs: {args.runs}, "
        f"batch size {args.batch_size}"
    )
    print()
    print("| side | median wall | realtime factor | WER |")
    print("|---|---|---|---|")
    for name in sides:
        print(
            f"| {name} | {medians[name]:.2f} s | {duration / medians[name]:.1f}x "
            f"| {wers[name]:.2%} |"
        )
    print(f"\nspeed ratio unbatched / batched: {ratio:.2f}x (goal for batch jobs >= 1.3)")
    if args.json:
        figures = {
            "audio_seconds": round(duration, 1),
            "runs": args.runs,
            "batch_size": args.batch_size,
            "unbatched_vad_filter": vad_filter,
            "sides": {
                name: {
                    "median_seconds": round(medians[name], 3),
                    "realtime_factor": round(duration / medians[name], 2),
                    "wer": round(wers[name], 4),
                }
                for name in sides
            },
            "speed_ratio": round(ratio, 3),
        }
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

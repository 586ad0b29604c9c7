"""Speech synthesis: realtime factor and time to first audio, in-process and over HTTP.

Two texts: one ~200-character sentence (what Home Assistant reads out), and an eight-sentence
paragraph (where streaming pays: the first sentence plays while the rest is synthesized).
Each is measured four ways, runs interleaved so that machine noise hits all alike:

* ``piper``: a plain ``PiperVoice.synthesize`` loop (what a user writes without Voxhelm);
* ``voxhelm.tts``: ``tts.stream`` with lane admission per sentence;
* ``HTTP pcm``: ``POST /v1/audio/speech`` streamed, ``response_format=pcm`` (24 kHz);
* ``HTTP mp3``: the same, encoded to MP3 as it streams.

Time to first audio is until the first chunk (in-process) or the first body byte (HTTP);
the realtime factor is seconds of audio per second of wall time (higher is faster).

    uv run python bench/tts.py [--runs 7] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PRODUCER_TOKEN, make_config, start_server  # noqa: E402
from tests.speech import EPISODE  # noqa: E402

from voxhelm import tts  # noqa: E402
from voxhelm.config import Config  # noqa: E402
from voxhelm.tts.piper import bundled_voice_files  # noqa: E402

SENTENCE = (
    "The weather station on the roof reported a cold front moving in from the west, "
    "so we carried all the tomato plants into the old greenhouse and closed every window "
    "before the evening storm arrived."
)
PARAGRAPH = " ".join(EPISODE)


@dataclass(frozen=True)
class Run:
    first: float  # seconds to the first audio
    total: float  # seconds to the last audio
    audio: float  # seconds of audio produced


Measure = Callable[[str], Run]


def piper_raw() -> Measure:
    from piper import PiperVoice

    files = bundled_voice_files()
    assert files is not None
    voice = PiperVoice.load(str(files[0]), config_path=str(files[1]))

    def measure(text: str) -> Run:
        started = time.perf_counter()
        first, samples, rate = 0.0, 0, 1
        for chunk in voice.synthesize(text):
            if not samples:
                first = time.perf_counter() - started
            samples += len(chunk.audio_float_array)
            rate = chunk.sample_rate
        return Run(first, time.perf_counter() - started, samples / rate)

    return measure


def in_process(config: Config) -> Measure:
    def measure(text: str) -> Run:
        started = time.perf_counter()
        first, samples = 0.0, 0
        stream = tts.stream(text, config=config)
        for chunk in stream:
            if not samples:
                first = time.perf_counter() - started
            samples += len(chunk.samples)
        return Run(first, time.perf_counter() - started, samples / stream.sample_rate)

    return measure


def over_http(client: httpx.Client, fmt: str) -> Measure:
    def measure(text: str) -> Run:
        body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt}
        started = time.perf_counter()
        first, data = 0.0, b""
        with client.stream("POST", "/v1/audio/speech", json=body) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                if chunk and not data:
                    first = time.perf_counter() - started
                data += chunk
        total = time.perf_counter() - started
        if fmt == "pcm":
            seconds = len(data) / 2 / 24000
        else:
            from voxhelm.audio import decode

            seconds = decode(data).duration
        return Run(first, total, seconds)

    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp:
        root = Path(tmp)
        config = make_config(root / "inproc", VOXHELM_LANE_SCHEDULER_DIR=str(root / "lanes"))
        server = start_server(root / "server", command="web")
        try:
            with httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"},
                timeout=600,
            ) as client:
                ways: dict[str, Measure] = {
                    "piper (plain loop)": piper_raw(),
                    "voxhelm.tts.stream": in_process(config),
                    "HTTP pcm (streamed)": over_http(client, "pcm"),
                    "HTTP mp3 (streamed)": over_http(client, "mp3"),
                }
                results: dict[tuple[str, str], list[Run]] = {}
                for label, text in (("sentence", SENTENCE), ("paragraph", PARAGRAPH)):
                    for measure in ways.values():
                        measure(text)  # warm-up: voice load, first-call costs
                    for _ in range(args.runs):
                        for name, measure in ways.items():
                            results.setdefault((label, name), []).append(measure(text))
        finally:
            server.stop()

    print(
        f"voice en_US-joe-medium (22.05 kHz), CPU, runs: {args.runs}; "
        f"sentence: {len(SENTENCE)} characters, paragraph: {len(PARAGRAPH)} characters "
        f"in {len(EPISODE)} sentences"
    )
    print()
    print("| text | path | audio | time to first audio | total | realtime factor |")
    print("|---|---|---|---|---|---|")
    rows = []
    for (label, name), runs in results.items():
        first = statistics.median(r.first for r in runs)
        total = statistics.median(r.total for r in runs)
        audio = statistics.median(r.audio for r in runs)
        print(
            f"| {label} | {name} | {audio:.1f} s | {first * 1000:.0f} ms "
            f"| {total * 1000:.0f} ms | {audio / total:.1f}x |"
        )
        rows.append(
            {
                "text": label,
                "path": name,
                "audio_seconds": round(audio, 2),
                "first_audio_ms": round(first * 1000),
                "total_ms": round(total * 1000),
                "realtime_factor": round(audio / total, 2),
            }
        )
    if args.json:
        figures = {"runs": args.runs, "rows": rows}
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

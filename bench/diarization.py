"""Diarization accuracy and speed on synthetic conversations with known turns.

Two- and three-speaker conversations are spoken by distinct synthetic voices (the bundled
Piper voice and espeak-ng variants), with long and with short pauses between turns (short
pauses put speaker changes inside the embedding windows). Each is diarized by the configured
engine (default: the embedded ``onnx``), scored as DER at collar 0 and 0.25 s (own scorer,
best speaker mapping, see ``tests/diarization/scoring.py``), and timed as seconds of work per
minute of audio.

    uv run python bench/diarization.py [--backend onnx] [--turns 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.diarization.conversation import (  # noqa: E402
    THREE_SPEAKERS,
    TWO_SPEAKERS,
    Line,
    converse,
)
from tests.diarization.scoring import diarization_error  # noqa: E402
from tests.speech import BOOK, EPISODE  # noqa: E402

from voxhelm.config import load_config  # noqa: E402
from voxhelm.diarization.align import normalize_turns  # noqa: E402
from voxhelm.diarization.base import SpeakerHints  # noqa: E402
from voxhelm.diarization.registry import diarizer  # noqa: E402

SENTENCES = tuple(
    dict.fromkeys(
        [line.text for line in (*TWO_SPEAKERS, *THREE_SPEAKERS)] + list(EPISODE) + list(BOOK)
    )
)


def lines_for(voices: tuple[str, ...], count: int) -> list[Line]:
    """``count`` turns that rotate through ``voices`` (with some irregularity), each one or
    two sentences, never the same audio twice (exact repeats would flatter the clustering)."""
    lines = []
    for index in range(count):
        voice = voices[(index + index // 5) % len(voices)]
        if lines and lines[-1].speaker == voice:
            voice = voices[(voices.index(voice) + 1) % len(voices)]
        first = SENTENCES[index % len(SENTENCES)]
        second = SENTENCES[(index * 7 + 3) % len(SENTENCES)]
        text = first if index % 3 == 0 else f"{first} {second}"
        lines.append(Line(voice, text))
    return lines


def cases(turns: int) -> list[tuple[str, list[Line], float, int]]:
    """(name, lines, pause seconds, speakers); ``turns`` sets each conversation's length."""
    two = lines_for(("piper", "ava"), turns)
    three = lines_for(("piper", "ava", "bert"), turns)
    return [
        ("2 speakers, 0.6 s pauses", two, 0.6, 2),
        ("2 speakers, 0.15 s pauses", two, 0.15, 2),
        ("3 speakers, 0.6 s pauses", three, 0.6, 3),
        ("3 speakers, 0.15 s pauses", three, 0.15, 3),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--turns", type=int, default=16, help="turns per conversation")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    config = load_config({"VOXHELM_DIARIZATION_BACKEND": args.backend})
    engine = diarizer(config.diarization)
    warm = converse(TWO_SPEAKERS[:2])
    engine.diarize(warm.audio(), SpeakerHints())  # loads the models

    rows = []
    for name, lines, pause, speakers in cases(args.turns):
        conversation = converse(lines, pause_seconds=pause)
        started = time.perf_counter()
        turns = normalize_turns(engine.diarize(conversation.audio(), SpeakerHints()))
        elapsed = time.perf_counter() - started
        found = len({t.speaker for t in turns})
        rows.append(
            {
                "case": name,
                "audio_seconds": round(conversation.duration, 1),
                "speakers": speakers,
                "found": found,
                "der_collar_0": round(diarization_error(conversation.turns, turns, 0.0).der, 4),
                "der_collar_025": round(diarization_error(conversation.turns, turns, 0.25).der, 4),
                "seconds_per_audio_minute": round(elapsed / conversation.duration * 60, 2),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"backend {args.backend}")
    header = ("audio", "spk", "found", "DER c0", "DER c.25", "s/min")
    print(f"{'case':28} " + " ".join(f"{h:>7}" for h in header))
    for row in rows:
        print(
            f"{row['case']:28} {row['audio_seconds']:6.1f}s {row['speakers']:7d} {row['found']:7d}"
            f" {row['der_collar_0']:7.1%} {row['der_collar_025']:7.1%}"
            f" {row['seconds_per_audio_minute']:7.2f}"
        )


if __name__ == "__main__":
    main()

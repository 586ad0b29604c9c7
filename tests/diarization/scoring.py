"""Diarization error rate (DER) on a 10 ms grid, with a forgiveness collar at reference
boundaries and the best one-to-one mapping of hypothesis to reference speakers.

DER = (missed speech + false alarm + speaker confusion) / scored reference speech, as in
NIST md-eval for single-speaker (non-overlapping) references.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxhelm.diarization.base import Turn

STEP = 0.01


@dataclass(frozen=True)
class Score:
    der: float
    missed: float  # seconds
    false_alarm: float
    confusion: float
    scored: float  # seconds of reference speech that were scored


def _grid(turns: Sequence[Turn], frames: int) -> tuple[np.ndarray, list[str]]:
    names = sorted({t.speaker for t in turns})
    grid = np.full(frames, -1, dtype=np.int64)
    for turn in turns:
        grid[round(turn.start / STEP) : round(turn.end / STEP)] = names.index(turn.speaker)
    return grid, names


def diarization_error(
    reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.0
) -> Score:
    """Score ``hypothesis`` against ``reference``; ``collar`` seconds either side of each
    reference turn boundary are not scored."""
    end = max([t.end for t in (*reference, *hypothesis)] or [0.0])
    frames = round(end / STEP) + 1
    ref, ref_names = _grid(reference, frames)
    hyp, hyp_names = _grid(hypothesis, frames)
    scored = np.ones(frames, dtype=bool)
    width = round(collar / STEP)
    if width:
        for turn in reference:
            for edge in (round(turn.start / STEP), round(turn.end / STEP)):
                scored[max(0, edge - width) : edge + width] = False
    ref_speech = scored & (ref >= 0)
    hyp_speech = scored & (hyp >= 0)
    missed = int((ref_speech & ~hyp_speech).sum())
    false_alarm = int((hyp_speech & ~(ref >= 0)).sum())
    both = ref_speech & hyp_speech
    best_correct = 0
    slots = max(len(ref_names), len(hyp_names))
    for mapping in itertools.permutations(range(slots), len(hyp_names)):
        correct = sum(
            int((both & (hyp == h) & (ref == r)).sum())
            for h, r in enumerate(mapping)
            if r < len(ref_names)
        )
        best_correct = max(best_correct, correct)
    confusion = int(both.sum()) - best_correct
    total = int(ref_speech.sum())
    der = (missed + false_alarm + confusion) / total if total else 0.0
    return Score(
        der=der,
        missed=missed * STEP,
        false_alarm=false_alarm * STEP,
        confusion=confusion * STEP,
        scored=total * STEP,
    )

"""The embedded diarization engine (``onnx``): Silero VAD + CAM++ embeddings + spectral
clustering, all on the CPU with onnxruntime; no account, no token, no torch.

1. Speech regions come from the Silero VAD model that faster-whisper ships.
2. Each region is cut into windows of :data:`WINDOW_SECONDS` every :data:`HOP_SECONDS` (a
   shorter region is one window) and each window gets a CAM++ embedding.
3. The embeddings are clustered (:mod:`voxhelm.diarization.clustering`).
4. Overlapping windows hand over at the middle of their overlap; consecutive pieces of one
   speaker become one turn.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from voxhelm.audio import SAMPLE_RATE, Audio
from voxhelm.diarization.base import Diarizer, SpeakerHints, Turn
from voxhelm.diarization.clustering import cluster
from voxhelm.diarization.embedding import (
    SpeakerEmbedder,
    filterbank,
    frames_between,
    shared_embedder,
)

logger = logging.getLogger("voxhelm.diarization")

WINDOW_SECONDS = 1.5
HOP_SECONDS = 0.75
MIN_REGION_SECONDS = 0.25  # a shorter blip is not embedded; it takes its neighbour's speaker
VAD_THRESHOLD = 0.5
VAD_MIN_SILENCE_MS = 250  # a pause this long between speakers starts a new region
VAD_PAD_MS = 60


@dataclass(frozen=True)
class Window:
    """A stretch of speech in samples, and the region (speech stretch) it belongs to."""

    start: int
    end: int
    region: int


@functools.cache
def _vad_options() -> Any:
    from faster_whisper.vad import VadOptions

    return VadOptions(
        threshold=VAD_THRESHOLD,
        min_speech_duration_ms=int(MIN_REGION_SECONDS * 1000),
        min_silence_duration_ms=VAD_MIN_SILENCE_MS,
        speech_pad_ms=VAD_PAD_MS,
    )


def speech_regions(audio: Audio) -> list[tuple[int, int]]:
    """Silero VAD's speech stretches of ``audio`` as (start, end) sample indices."""
    from faster_whisper.vad import get_speech_timestamps

    spans = get_speech_timestamps(audio.samples, _vad_options(), sampling_rate=SAMPLE_RATE)
    return [(int(s["start"]), min(int(s["end"]), len(audio.samples))) for s in spans]


def windows_of(regions: list[tuple[int, int]]) -> list[Window]:
    """Embedding windows covering every region; each region's last window ends with it."""
    size = int(WINDOW_SECONDS * SAMPLE_RATE)
    hop = int(HOP_SECONDS * SAMPLE_RATE)
    found = []
    for index, (start, end) in enumerate(regions):
        if end - start < MIN_REGION_SECONDS * SAMPLE_RATE:
            continue
        if end - start <= size:
            found.append(Window(start, end, index))
            continue
        starts = list(range(start, end - size + 1, hop))
        if starts[-1] + size < end:
            starts.append(end - size)
        found.extend(Window(s, s + size, index) for s in starts)
    return found


def turns_of(
    regions: list[tuple[int, int]], windows: list[Window], labels: np.ndarray
) -> list[Turn]:
    """Turns from labeled windows: overlaps split at their middle, neighbours merged, and
    regions without a window given the speaker of the nearest window."""
    pieces: list[tuple[int, int, int]] = []  # (start, end, label) in samples
    by_region: dict[int, list[tuple[Window, int]]] = {}
    for window, label in zip(windows, labels, strict=True):
        by_region.setdefault(window.region, []).append((window, int(label)))
    centers = np.array([(w.start + w.end) / 2 for w in windows]) if windows else np.zeros(0)
    for index, (start, end) in enumerate(regions):
        members = by_region.get(index)
        if not members:
            if len(centers):
                nearest = int(np.abs(centers - (start + end) / 2).argmin())
                pieces.append((start, end, int(labels[nearest])))
            continue
        cut = start
        for number, (window, label) in enumerate(members):
            following = members[number + 1][0] if number + 1 < len(members) else None
            until = end if following is None else (following.start + window.end) // 2
            pieces.append((cut, until, label))
            cut = until
    turns: list[Turn] = []
    for start, end, label in pieces:
        if end <= start:
            continue
        name = f"cluster_{label}"
        previous = turns[-1] if turns else None
        gap = (start / SAMPLE_RATE) - previous.end if previous else 0.0
        if previous is not None and previous.speaker == name and gap < 0.5:
            turns[-1] = Turn(previous.start, end / SAMPLE_RATE, name)
        else:
            turns.append(Turn(start / SAMPLE_RATE, end / SAMPLE_RATE, name))
    return turns


class OnnxDiarizer(Diarizer):
    """Offline diarization on the CPU with the bundled Silero VAD and CAM++ models."""

    name: ClassVar[str] = "onnx"

    def __init__(self, embedder: SpeakerEmbedder | None = None) -> None:
        self.embedder = embedder or shared_embedder()

    def check(self) -> list[str]:
        problems = self.embedder.check()
        try:
            from faster_whisper.vad import get_vad_model  # noqa: F401
        except ImportError:
            problems.append("faster-whisper (which ships the Silero VAD model) is not installed.")
        return problems

    def diarize(self, audio: Audio, hints: SpeakerHints) -> list[Turn]:
        started = time.monotonic()
        regions = speech_regions(audio)
        windows = windows_of(regions)
        if not windows:
            return []
        embeddings = self.embed_windows(audio, windows)
        labels = cluster(embeddings, hints)
        turns = turns_of(regions, windows, labels)
        logger.info(
            "diarized %.1fs of audio: %d regions, %d windows, %d speakers in %.2fs",
            audio.duration,
            len(regions),
            len(windows),
            len(set(labels.tolist())),
            time.monotonic() - started,
        )
        return turns

    def embed_windows(self, audio: Audio, windows: list[Window]) -> np.ndarray:
        """CAM++ embeddings of ``windows`` (rows not length-normalized)."""
        frames = filterbank(audio.samples)
        return self.embedder.embed_frames([frames_between(frames, w.start, w.end) for w in windows])

"""Voice activity: does a short recording hold speech at all? (Silero VAD, from faster-whisper)

Whisper given silence or hiss invents a phrase ("Thank you.", "you"); for a voice command
that becomes an action. Asking the small Silero model first answers "nothing was said"
without running Whisper, and costs a few milliseconds for a command's length of audio.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from voxhelm.audio import SAMPLE_RATE, Audio

logger = logging.getLogger("voxhelm.stt")

THRESHOLD = 0.5  # Silero's speech probability for a 32 ms frame to count as speech
MIN_SPEECH_MS = 120  # shorter bursts (a click, a cough) are not a command
MIN_SILENCE_MS = 300  # a pause this long ends a stretch of speech
SPEECH_PAD_MS = 200  # kept around speech (word onsets and endings are quiet)


@functools.cache
def _options(min_silence_ms: int = MIN_SILENCE_MS, pad_ms: int = SPEECH_PAD_MS) -> Any:
    from faster_whisper.vad import VadOptions

    return VadOptions(
        threshold=THRESHOLD,
        min_speech_duration_ms=MIN_SPEECH_MS,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=pad_ms,
    )


def speech_end(audio: Audio) -> float | None:
    """Where the last speech in ``audio`` ends (seconds, padded), or None without speech.

    Speech still going on at the end of ``audio`` ends at ``audio.duration``.
    """
    spans = speech_spans(audio)
    return min(audio.duration, spans[-1][1]) if spans else None


def speech_spans(
    audio: Audio, *, min_silence_ms: int = MIN_SILENCE_MS, pad_ms: int = SPEECH_PAD_MS
) -> list[tuple[float, float]]:
    """The stretches of speech in ``audio`` as ``(start, end)`` seconds, padded, in order.

    A pause shorter than ``min_silence_ms`` does not end a stretch.
    """
    if audio.sample_rate != SAMPLE_RATE:
        raise ValueError("VAD needs 16 kHz audio")
    if len(audio.samples) == 0:
        return []
    from faster_whisper.vad import get_speech_timestamps

    options = _options(min_silence_ms, pad_ms)
    spans = get_speech_timestamps(audio.samples, options, sampling_rate=SAMPLE_RATE)
    return [(span["start"] / SAMPLE_RATE, span["end"] / SAMPLE_RATE) for span in spans]


def has_speech(audio: Audio) -> bool:
    """Whether Silero VAD finds speech in ``audio`` (16 kHz mono)."""
    return speech_end(audio) is not None


def warm_up() -> None:
    """Load the VAD model now, so that the first command does not pay for it."""
    try:
        has_speech(Audio(np.zeros(SAMPLE_RATE // 2, dtype=np.float32)))
    except Exception:  # the gate then loads on first use, or fails there with a log line
        logger.exception("Silero VAD failed to load")

"""Test media: real speech in every container clients send, and a check that audio survived."""

from __future__ import annotations

import numpy as np

from tests.speech import Speech
from voxhelm.encode import encode, encode_video_with_audio

CONTAINERS = ("wav", "mp3", "m4a", "ogg", "opus", "flac", "webm", "mp4")
"""Input containers; ``mp4`` and ``webm`` come as real video files (black frames + audio)."""

VIDEO_CONTAINERS = ("mp4", "webm")

SUFFIXES = {fmt: f".{fmt}" for fmt in CONTAINERS}

CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "webm": "video/webm",
    "mp4": "video/mp4",
}


def speech_in(fmt: str, speech: Speech) -> bytes:
    """``speech`` encoded as a file of container ``fmt`` (one of :data:`CONTAINERS`)."""
    if fmt in VIDEO_CONTAINERS:
        return encode_video_with_audio(speech.samples, speech.sample_rate, fmt)
    return encode(speech.samples, speech.sample_rate, fmt)


def reference(speech: Speech, rate: int = 16000) -> np.ndarray:
    """``speech`` as float32 at ``rate``, by linear interpolation (independent of PyAV)."""
    source = speech.samples.astype(np.float32) / 32768.0
    n_out = round(len(source) * rate / speech.sample_rate)
    positions = np.arange(n_out) * (speech.sample_rate / rate)
    resampled: np.ndarray = np.interp(positions, np.arange(len(source)), source)
    return resampled.astype(np.float32)


def similarity(expected: np.ndarray, actual: np.ndarray, max_lag: int = 3200) -> float:
    """Peak normalized cross-correlation within ``max_lag`` samples (codec delay) of each other.

    1.0 is the same waveform; unrelated speech stays far below 0.5.
    """
    size = len(expected) + len(actual)
    n_fft = 1 << (size - 1).bit_length()
    spectrum = np.fft.rfft(actual, n_fft) * np.conj(np.fft.rfft(expected, n_fft))
    correlation = np.fft.irfft(spectrum, n_fft)
    # Lags 0..max_lag sit at the start of the circular result, negative lags at its end.
    window = np.concatenate([correlation[: max_lag + 1], correlation[-max_lag:]])
    norm = float(np.linalg.norm(expected) * np.linalg.norm(actual))
    return float(window.max() / norm) if norm else 0.0

"""Incoming Wyoming audio: format checks, and conversion of any PCM to 16 kHz mono as it arrives.

Chunks are converted as they come (channels averaged, sample width cut to 16 bits, rate
changed by FFmpeg's resampler through PyAV), so a request holds at most its converted
audio, and the length limit is checked on the input before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from voxhelm.audio import SAMPLE_RATE, Audio

MIN_RATE = 1000
MAX_RATE = 192_000
MAX_CHANNELS = 8
WIDTHS = (1, 2, 3, 4)  # bytes per sample: unsigned 8-bit, signed 16-, 24- and 32-bit


class AudioFormatError(ValueError):
    """The event's audio format is missing, out of range or does not match its payload."""


class AudioTooLong(ValueError):
    """The request's audio is longer than the limit."""


@dataclass(frozen=True)
class PcmFormat:
    rate: int
    width: int
    channels: int

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> PcmFormat:
        """Read and check ``rate``, ``width`` and ``channels`` of an audio event."""
        values = {}
        for name in ("rate", "width", "channels"):
            value = data.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise AudioFormatError(f"Audio events need an integer '{name}'.")
            values[name] = value
        fmt = cls(**values)
        if not MIN_RATE <= fmt.rate <= MAX_RATE:
            raise AudioFormatError(f"Audio rate must be {MIN_RATE} to {MAX_RATE} Hz.")
        if fmt.width not in WIDTHS:
            raise AudioFormatError("Audio width must be 1, 2, 3 or 4 bytes.")
        if not 1 <= fmt.channels <= MAX_CHANNELS:
            raise AudioFormatError(f"Audio channels must be 1 to {MAX_CHANNELS}.")
        return fmt

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels


def to_mono_float(data: bytes, fmt: PcmFormat) -> np.ndarray:
    """Interleaved PCM of ``fmt`` as mono float32 in [-1, 1] at the input rate."""
    if len(data) % fmt.frame_bytes:
        raise AudioFormatError("An audio chunk must hold whole sample frames.")
    raw = np.frombuffer(data, dtype=np.uint8)
    if fmt.width == 1:
        pcm = (raw.astype(np.int16) - 128) << 8
    else:
        # The two most significant bytes of each little-endian sample are its 16-bit value.
        pcm = raw.reshape(-1, fmt.width)[:, fmt.width - 2 :].copy().view("<i2").reshape(-1)
    samples = pcm.astype(np.float32) / 32768.0
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1, dtype=np.float32)
    return samples


class PcmCollector:
    """The audio of one request, converted to 16 kHz mono chunk by chunk."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self.declared: PcmFormat | None = None  # from audio-start, if one came
        self.input_bytes = 0
        self.input_seconds = 0.0
        self._chunks: list[np.ndarray] = []
        self._rate: int | None = None
        self._resampler: av.AudioResampler | None = None

    def start(self, fmt: PcmFormat | None) -> None:
        """Begin a new stream (``audio-start``, ``transcribe``): what came before is dropped."""
        self.declared = fmt
        self.input_bytes = 0
        self.input_seconds = 0.0
        self._chunks = []
        self._rate = None
        self._resampler = None

    def add(self, data: bytes, fmt: PcmFormat) -> np.ndarray:
        """Convert and keep one chunk; the 16 kHz samples it added (the resampler may hold
        a few back until the next chunk). Raises AudioFormatError or AudioTooLong."""
        seconds = len(data) / (fmt.frame_bytes * fmt.rate)
        if self.input_seconds + seconds > self.max_seconds:
            raise AudioTooLong(f"The audio is longer than the {self.max_seconds:g} second limit.")
        samples = to_mono_float(data, fmt)
        self.input_bytes += len(data)
        self.input_seconds += seconds
        kept = len(self._chunks)
        if fmt.rate != self._rate:
            self._flush()
            self._rate = fmt.rate
            if fmt.rate != SAMPLE_RATE:
                self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        if self._resampler is None:
            self._chunks.append(samples)
        else:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = fmt.rate
            self._chunks += [_samples(out) for out in self._resampler.resample(frame)]
        return _joined(self._chunks[kept:])

    def _flush(self) -> None:
        if self._resampler is not None:
            self._chunks += [_samples(out) for out in self._resampler.resample(None)]
            self._resampler = None

    def snapshot(self) -> Audio:
        """The audio converted so far, without ending the stream (the resampler keeps a
        few milliseconds back until more comes or the stream ends)."""
        return Audio(_joined(self._chunks))

    def finish(self) -> Audio:
        """All the audio so far, as 16 kHz mono float32."""
        self._flush()
        samples = _joined(self._chunks)
        return Audio(np.clip(samples, -1.0, 1.0, out=samples))

    def shape(self, audio: Audio) -> dict[str, Any]:
        """The debug line's ``audio_shape``: what came in and what the engine got."""
        converted = len(audio.samples) * 2
        shape: dict[str, Any] = {
            "converted": {
                "bytes": converted,
                "channels": 1,
                "duration_seconds": round(audio.duration, 3),
                "rate": SAMPLE_RATE,
                "width": 2,
            }
        }
        if self.declared is not None:
            shape["input"] = {
                "bytes": self.input_bytes,
                "channels": self.declared.channels,
                "duration_seconds": round(self.input_seconds, 3),
                "rate": self.declared.rate,
                "width": self.declared.width,
            }
        return shape


def _joined(chunks: list[np.ndarray]) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _samples(frame: av.AudioFrame) -> np.ndarray:
    samples: np.ndarray = frame.to_ndarray()[0]
    return samples

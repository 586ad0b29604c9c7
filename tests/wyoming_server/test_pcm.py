"""Incoming PCM of any rate, width and channel count becomes 16 kHz mono."""

from __future__ import annotations

import numpy as np
import pytest

from voxhelm.wyoming_server.pcm import (
    AudioFormatError,
    AudioTooLong,
    PcmCollector,
    PcmFormat,
    to_mono_float,
)


def sine(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def encode(samples: np.ndarray, width: int, channels: int) -> bytes:
    frames = np.repeat(samples[:, None], channels, axis=1).reshape(-1)
    if width == 1:
        return (np.round(frames * 127) + 128).astype(np.uint8).tobytes()
    scaled = np.round(frames * (2 ** (8 * width - 1) - 1)).astype(np.int64)
    raw = scaled.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :width]
    return raw.tobytes()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_every_width_and_channel_count_decodes_to_the_same_signal(
    width: int, channels: int
) -> None:
    signal = sine(8000, 0.1)
    decoded = to_mono_float(encode(signal, width, channels), PcmFormat(8000, width, channels))
    assert decoded.dtype == np.float32
    assert np.max(np.abs(decoded - signal)) < (0.02 if width == 1 else 0.001)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_chunks_are_resampled_to_16_khz_as_they_arrive(rate: int) -> None:
    collector = PcmCollector(max_seconds=10)
    fmt = PcmFormat(rate, 2, 2)
    collector.start(fmt)
    data = encode(sine(rate, 1.0), 2, 2)
    pieces = [
        collector.add(data[offset : offset + 4096], fmt) for offset in range(0, len(data), 4096)
    ]
    audio = collector.finish()
    assert audio.sample_rate == 16000
    assert len(audio.samples) == pytest.approx(16000, abs=40)
    # Each chunk gives its converted samples at once; only the resampler's last few
    # milliseconds wait for the end of the stream.
    streamed = np.concatenate(pieces)
    assert 0 <= len(audio.samples) - len(streamed) <= 40
    assert np.array_equal(audio.samples[: len(streamed)], np.clip(streamed, -1, 1))
    spectrum = np.abs(np.fft.rfft(audio.samples[1000:15000]))
    peak_hz = np.argmax(spectrum) * 16000 / 14000
    assert peak_hz == pytest.approx(440, abs=5)
    shape = collector.shape(audio)
    assert shape["input"] == {"bytes": len(data), "channels": 2, "duration_seconds": 1.0,
                              "rate": rate, "width": 2}  # fmt: skip
    assert shape["converted"]["rate"] == 16000


def test_it_stops_at_the_length_limit_before_storing_more() -> None:
    collector = PcmCollector(max_seconds=1)
    fmt = PcmFormat(16000, 2, 1)
    collector.add(b"\0" * 32000, fmt)
    with pytest.raises(AudioTooLong):
        collector.add(b"\0\0", fmt)
    assert collector.input_bytes == 32000


@pytest.mark.parametrize(
    "data",
    [
        {"rate": 0, "width": 2, "channels": 1},
        {"rate": 16000, "width": 5, "channels": 1},
        {"rate": 16000, "width": 2, "channels": 0},
        {"rate": 16000, "width": 2, "channels": 9},
        {"rate": 16000.0, "width": 2, "channels": 1},
        {"rate": True, "width": 2, "channels": 1},
        {"width": 2, "channels": 1},
    ],
)
def test_it_refuses_formats_it_cannot_read(data: dict[str, object]) -> None:
    with pytest.raises(AudioFormatError):
        PcmFormat.from_data(data)


def test_a_chunk_must_hold_whole_frames() -> None:
    with pytest.raises(AudioFormatError):
        to_mono_float(b"\0" * 6, PcmFormat(16000, 2, 2))

"""Decode bombs and poisoned samples, built byte by byte: tiny files that decode to hours.

A FLAC frame holds up to 65,535 samples and a CONSTANT subframe stores them in 3 bytes,
so a 55-byte FLAC at 16 Hz is one frame of 4,096 seconds: 262 MB once resampled to
16 kHz, and more inside the resampler. STREAMINFO's total sample count is left at 0
("unknown"), so no container header gives the length away. Float WAVs carry NaN and
infinities, which no integer format can.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np

MAX_BLOCK = 65535
"""The most samples a FLAC frame can hold."""


def flac_bomb(
    rate: int, frames: int = 1, block: int = MAX_BLOCK, frame_rate: int | None = None
) -> bytes:
    """A mono 16-bit FLAC of ``frames`` silent frames of ``block`` samples at ``rate`` Hz.

    With ``frame_rate`` every frame names that rate in its own header instead (FLAC allows
    it, and FFmpeg follows it), so a stream declared at ``rate`` changes rate mid-stream.
    """
    info = struct.pack(">HH", block, block) + bytes(6)  # block sizes, frame sizes unknown
    info += ((rate << 44) | (15 << 36)).to_bytes(8, "big")  # mono, 16 bit, 0 samples
    info += bytes(16)  # no MD5
    head = b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info
    return head + b"".join(_frame(n, block, frame_rate) for n in range(frames))


def _frame(number: int, block: int, rate: int | None) -> bytes:
    assert number < 0x80  # a one-byte UTF-8 frame number
    # Fixed block size; "block - 1 in 16 bits follows"; the rate from STREAMINFO or
    # "in Hz, 16 bits follow"; mono; 16 bits per sample.
    header = bytes([0xFF, 0xF8, 0x70 | (0 if rate is None else 0x0D), 0x08, number])
    header += struct.pack(">H", block - 1)
    if rate is not None:
        header += struct.pack(">H", rate)
    header += bytes([_crc8(header)])
    body = header + b"\x00" + struct.pack(">h", 0)  # a CONSTANT subframe of zeros
    return body + struct.pack(">H", _crc16(body))


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class _Unseekable:
    """A write-only sink: muxers that cannot seek back leave the duration out."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)


def remuxed(flac: bytes, container: str) -> bytes:
    """The frames of ``flac`` in another container (``matroska``, ``ogg``), with no length."""
    sink = _Unseekable()
    with av.open(io.BytesIO(flac)) as source, av.open(sink, "w", format=container) as out:
        stream = out.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.dts is not None:  # the demuxer's empty end-of-stream packet
                packet.stream = stream
                out.mux(packet)
    return sink.buffer.getvalue()


def wav(samples: np.ndarray, rate: int) -> bytes:
    """A mono WAV of ``samples``: IEEE float for float arrays, else integer PCM."""
    data = samples.astype(samples.dtype.newbyteorder("<")).tobytes()
    width = samples.dtype.itemsize
    tag = 3 if samples.dtype.kind == "f" else 1
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * width, width, 8 * width)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )

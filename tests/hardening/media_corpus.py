"""Hostile media, generated: damaged files of every container, lying headers, playlists and
concat lists disguised as audio, polyglots, a silent FLAC that claims hours, 100k tiny frames.

Each :class:`Sample` says whether the server must refuse it (``must_refuse``) or may also
decode it (damaged but still partly valid media, valid media under a wrong name).
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from tests.media import CONTAINERS, CONTENT_TYPES, speech_in
from tests.speech import synthesize
from voxhelm.encode import encode

SPOKEN = "Open the garden door."


@dataclass(frozen=True)
class Sample:
    name: str
    filename: str
    content_type: str
    data: bytes
    must_refuse: bool


@functools.cache
def _valid(fmt: str) -> bytes:
    return speech_in(fmt, synthesize(SPOKEN))


def _wav(
    pcm: bytes,
    *,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    riff: int | None = None,
    data_size: int | None = None,
) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    data_len = len(pcm) if data_size is None else data_size
    riff_len = 36 + len(pcm) if riff is None else riff
    return (
        b"RIFF"
        + struct.pack("<I", riff_len)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_len)
        + pcm
    )


def _flac_with_total(data: bytes, total_samples: int) -> bytes:
    """Rewrite STREAMINFO's 36-bit total sample count (0 means "unknown")."""
    assert data[:4] == b"fLaC"
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (total_samples & ((1 << 36) - 1))
    return data[:18] + packed.to_bytes(8, "big") + data[26:]


@functools.cache
def _long_silence_flac(seconds: int, rate: int = 8000) -> bytes:
    return encode(np.zeros(seconds * rate, dtype=np.int16), rate, "flac")


def _adts_frames(count: int) -> bytes:
    """``count`` copies of one AAC frame of silence: a valid ADTS stream of tiny frames."""
    stream = encode(np.zeros(8000, dtype=np.int16), 8000, "aac")
    assert stream[0] == 0xFF and stream[1] & 0xF0 == 0xF0
    # Skip the first frames (encoder priming); take one from the middle.
    offset, frames = 0, []
    while offset + 7 <= len(stream):
        length = (
            ((stream[offset + 3] & 0x03) << 11)
            | (stream[offset + 4] << 3)
            | (stream[offset + 5] >> 5)
        )
        frames.append(stream[offset : offset + length])
        offset += length
    return frames[len(frames) // 2] * count


def _mp3_frames(count: int) -> bytes:
    stream = encode(np.zeros(8000, dtype=np.int16), 8000, "mp3")
    start = stream.find(b"\xff\xe3")
    if start < 0:
        start = stream.find(b"\xff\xf3")
    frame = stream[start : start + 72]
    return frame * count


def samples(canary_port: int) -> list[Sample]:
    """The corpus; ``canary_port`` is a loopback server that no decode may ever reach."""
    rng = random.Random(14)
    canary = f"http://127.0.0.1:{canary_port}"
    out: list[Sample] = []

    def add(
        name: str,
        data: bytes,
        filename: str = "",
        content_type: str = "audio/mpeg",
        refuse: bool = True,
    ) -> None:
        out.append(Sample(name, filename or f"{name}.mp3", content_type, data, refuse))

    # Damaged files of every container (8 containers x 4 kinds of damage).
    for fmt in CONTAINERS:
        data = _valid(fmt)
        ctype = CONTENT_TYPES[fmt]
        add(f"{fmt}-headers-only", data[:64], f"a.{fmt}", ctype)
        add(f"{fmt}-cut-in-half", data[: len(data) // 2], f"a.{fmt}", ctype, refuse=False)
        noise = bytes(rng.getrandbits(8) for _ in range(len(data) - 32))
        add(f"{fmt}-garbage-after-magic", data[:32] + noise, f"a.{fmt}", ctype, refuse=False)
        flipped = bytearray(data)
        for index in range(4, min(256, len(flipped))):
            flipped[index] ^= 0xA5
        add(f"{fmt}-corrupted-header", bytes(flipped), f"a.{fmt}", ctype, refuse=False)

    pcm = np.zeros(16000, dtype=np.int16).tobytes()
    add("zero-length", b"", "empty.wav", "audio/wav")
    add("one-byte", b"\0", "one.wav", "audio/wav")
    add("random-noise", bytes(rng.getrandbits(8) for _ in range(65536)), "noise.mp3")
    add("all-zeros", b"\0" * 262144, "zeros.wav", "audio/wav")
    add("plain-text", b"hello, this is not audio at all\n" * 100, "text.mp3")
    add(
        "wav-huge-declared-size",
        _wav(pcm, riff=0xFFFFFFFF, data_size=0xFFFFFFFF),
        "huge.wav",
        "audio/wav",
        refuse=False,
    )
    add("wav-rate-1hz", _wav(pcm, rate=1), "slow.wav", "audio/wav")
    add("wav-zero-channels", _wav(pcm, channels=0), "none.wav", "audio/wav")
    add("wav-zero-rate", _wav(pcm, rate=0), "zero.wav", "audio/wav")
    add("wav-255-channels", _wav(pcm, channels=255), "many.wav", "audio/wav")
    add("wav-3-bit-samples", _wav(pcm, bits=3), "odd.wav", "audio/wav", refuse=False)
    mp4 = _valid("mp4")
    add("mp4-box-size-max", b"\xff\xff\xff\xff" + mp4[4:], "box.mp4", "video/mp4")
    add(
        "mp4-box-largesize",
        struct.pack(">I4sQ", 1, b"ftyp", 2**63 - 1) + mp4[8:],
        "big.mp4",
        "video/mp4",
    )
    add(
        "mkv-unknown-sizes",
        b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff"
        + b"\x42\x86\x81\x01"
        + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"
        + b"\x00" * 4096,
        "u.mkv",
        "video/x-matroska",
    )
    ogg = bytearray(_valid("ogg"))
    ogg[22:26] = b"\0\0\0\0"  # the first page's CRC
    add("ogg-bad-crc", bytes(ogg), "crc.ogg", "audio/ogg", refuse=False)
    add("id3-claims-256mib", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + _mp3_frames(20), "id3.mp3")

    # Playlists and lists that make a demuxer open other files or URLs, named as audio.
    add(
        "hls-to-canary",
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{canary}/seg.ts\n"
        "#EXT-X-ENDLIST\n".encode(),
    )
    add("hls-to-local-file", b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    add("hls-relative", b"#EXTM3U\n#EXTINF:10,\n../../../../etc/hostname\n#EXT-X-ENDLIST\n")
    add(
        "hls-key-to-canary",
        f'#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="{canary}/key"\n'
        "#EXTINF:10,\nseg.ts\n#EXT-X-ENDLIST\n".encode(),
    )
    add("hls-after-bom", f"\ufeff#EXTM3U\n#EXTINF:10,\n{canary}/a.ts\n".encode())
    add("ffconcat", f"ffconcat version 1.0\nfile '{canary}/a.mp3'\nfile '/etc/passwd'\n".encode())
    add(
        "dash-mpd",
        f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011">'
        f'<BaseURL>{canary}/</BaseURL><Period><AdaptationSet><Representation id="a" '
        'bandwidth="1"><SegmentBase/></Representation></AdaptationSet></Period></MPD>'.encode(),
    )
    add(
        "sdp-rtp",
        f"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
        f"m=audio {canary_port} RTP/AVP 0\n".encode(),
    )
    add("m3u-plain", f"{canary}/a.mp3\n".encode())
    add("pls", f"[playlist]\nFile1={canary}/a.mp3\nNumberOfEntries=1\n".encode())
    add("hls-named-wav", f"#EXTM3U\n#EXTINF:10,\n{canary}/a.ts\n".encode(), "song.wav", "audio/wav")

    # Not audio at all, named as audio; and polyglots.
    png = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0" + b"\0" * 64
    add("png-as-wav", png, "image.wav", "audio/wav")
    add("jpeg-as-mp3", b"\xff\xd8\xff\xe0\0\x10JFIF\0" + b"\0" * 2048)
    add(
        "html-as-mp3",
        b"<!doctype html><html><body><audio src='"
        + canary.encode()
        + b"/a.mp3'></audio></body></html>",
    )
    add("gif-then-mp3", b"GIF89a" + b"\0" * 64 + _mp3_frames(50), refuse=False)
    add("pdf-then-wav", b"%PDF-1.4\n" + _valid("wav"), "doc.wav", "audio/wav", refuse=False)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("payload.txt", "x" * 1000)
    add(
        "wav-with-zip-appended",
        _valid("wav") + zipped.getvalue(),
        "poly.wav",
        "audio/wav",
        refuse=False,
    )
    add("ogg-named-mp3", _valid("ogg"), "wrong.mp3", "audio/mpeg", refuse=False)
    add("wav-named-mp4", _valid("wav"), "wrong.mp4", "video/mp4", refuse=False)

    # Size and length bombs.
    long_flac = _long_silence_flac(1200)
    add(
        "flac-claims-five-hours",
        _flac_with_total(long_flac, 5 * 3600 * 8000),
        "hours.flac",
        "audio/flac",
    )
    add("flac-hides-its-length", _flac_with_total(long_flac, 0), "hidden.flac", "audio/flac")
    add("adts-100k-tiny-frames", _adts_frames(100_000), "tiny.aac", "audio/aac")
    add("mp3-50k-tiny-frames", _mp3_frames(50_000), "tiny.mp3")
    return out

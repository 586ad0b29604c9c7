"""Decoding user media to 16 kHz mono: every container, bad input, length limits, and safety."""

from __future__ import annotations

import http.server
import io
import struct
import threading
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, cast

import av
import numpy as np
import psutil
import pytest

from tests.hardening.bombs import flac_bomb, remuxed
from tests.hardening.bombs import wav as bomb_wav
from tests.media import CONTAINERS, VIDEO_CONTAINERS, reference, similarity, speech_in
from tests.speech import SENTENCES, Speech, synthesize
from voxhelm import audio as audio_module
from voxhelm.audio import (
    MAX_RATE,
    MIN_RATE,
    SAMPLE_RATE,
    Audio,
    decode,
    from_pcm16,
    probe,
    wav_bytes,
    write_wav,
)
from voxhelm.encode import encode
from voxhelm.errors import MediaTooLong, UnsupportedMedia

# Codec priming and padding may lengthen or shorten the audio by a few frames.
DURATION_TOLERANCE = 0.15


@pytest.fixture(scope="module")
def speech() -> Speech:
    return synthesize(SENTENCES[0])


@pytest.fixture(scope="module")
def expected(speech: Speech) -> np.ndarray:
    return reference(speech)


@pytest.fixture(scope="module")
def media(speech: Speech) -> dict[str, bytes]:
    return {fmt: speech_in(fmt, speech) for fmt in CONTAINERS}


class CountingReader(io.RawIOBase):
    """A read-only, unseekable file object that counts the bytes handed out."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.bytes_read += len(chunk)
        return len(chunk)


@dataclass
class Canary:
    """A loopback HTTP server that records every request; nothing should ever reach it."""

    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def canary() -> Iterator[Canary]:
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.end_headers()
            self.wfile.write(b"\0" * 4096)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Canary(url=f"http://127.0.0.1:{server.server_address[1]}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("fmt", CONTAINERS)
def test_it_decodes_every_container(
    fmt: str, media: dict[str, bytes], speech: Speech, expected: np.ndarray
) -> None:
    audio = decode(media[fmt])

    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert abs(audio.duration - speech.duration) < DURATION_TOLERANCE
    assert np.abs(audio.samples).max() <= 1.0
    assert similarity(expected, audio.samples) > 0.8


def test_the_similarity_check_tells_different_sentences_apart(
    media: dict[str, bytes], expected: np.ndarray
) -> None:
    other = decode(speech_in("wav", synthesize(SENTENCES[1])))

    assert similarity(expected, other.samples) < 0.3


@pytest.mark.parametrize("kind", ["bytes", "path", "file object", "unseekable file object"])
def test_it_decodes_bytes_paths_and_file_objects(
    kind: str, media: dict[str, bytes], expected: np.ndarray, tmp_path: Path
) -> None:
    data = media["mp3"]
    sources: dict[str, Any] = {
        "bytes": data,
        "path": tmp_path / "speech.mp3",
        "file object": io.BytesIO(data),
        "unseekable file object": cast(BinaryIO, CountingReader(data)),
    }
    (tmp_path / "speech.mp3").write_bytes(data)

    audio = decode(sources[kind])

    assert similarity(expected, audio.samples) > 0.8


@pytest.mark.parametrize("fmt", VIDEO_CONTAINERS)
def test_it_takes_the_audio_out_of_a_video(
    fmt: str, media: dict[str, bytes], expected: np.ndarray
) -> None:
    info = probe(media[fmt])
    audio = decode(media[fmt])

    assert info.has_video and info.has_audio
    assert similarity(expected, audio.samples) > 0.8


def test_probe_reports_format_duration_and_streams(media: dict[str, bytes], speech: Speech) -> None:
    wav = probe(media["wav"])
    mp4 = probe(media["mp4"])

    assert wav.format_name == "wav"
    assert wav.duration == pytest.approx(speech.duration, abs=0.01)
    assert (wav.has_audio, wav.has_video) == (True, False)
    assert "mp4" in mp4.format_name.split(",")
    assert (mp4.has_audio, mp4.has_video) == (True, True)
    assert probe(_video_without_audio()).has_audio is False


def _video_without_audio() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 5)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


def _png() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="image2pipe") as container:
        stream = container.add_stream("png", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


def _sun_au(speech: Speech) -> bytes:
    # A real audio container FFmpeg reads fine, just not one on the allowlist.
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="au") as container:
        stream = container.add_stream("pcm_s16be", rate=speech.sample_rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(speech.samples.reshape(1, -1), layout="mono")
        frame.sample_rate = speech.sample_rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


@pytest.mark.parametrize(
    "case",
    [
        "zero bytes",
        "random garbage",
        "truncated mp3",
        "text",
        "png image",
        "video without audio",
        "container not on the allowlist",
    ],
)
def test_it_refuses_media_it_cannot_decode(
    case: str, media: dict[str, bytes], speech: Speech, tmp_path: Path
) -> None:
    makers: dict[str, Callable[[], bytes]] = {
        "zero bytes": lambda: b"",
        "random garbage": lambda: np.random.default_rng(7).bytes(50_000),
        "truncated mp3": lambda: media["mp3"][:500],
        "text": lambda: b"Dear customer, your order has shipped.\n" * 40,
        "png image": _png,
        "video without audio": _video_without_audio,
        "container not on the allowlist": lambda: _sun_au(speech),
    }
    data = makers[case]()
    path = tmp_path / "upload.mp3"
    path.write_bytes(data)

    with pytest.raises(UnsupportedMedia) as excinfo:
        decode(path)

    assert excinfo.value.code == "unsupported_media"
    assert str(tmp_path) not in excinfo.value.message
    assert len(excinfo.value.message) < 80


def test_it_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode(tmp_path / "missing.wav")

    assert str(tmp_path) not in excinfo.value.message


def test_it_refuses_media_declared_longer_than_the_limit(speech: Speech) -> None:
    data = encode(np.tile(speech.samples, 10), speech.sample_rate, "flac")
    reader = CountingReader(data)

    with pytest.raises(MediaTooLong) as excinfo:
        decode(cast(BinaryIO, reader), max_seconds=5.0)

    assert excinfo.value.code == "audio_too_long"
    # Refused from the header: decoding up to the cap would have read about a fifth.
    assert reader.bytes_read < len(data) / 10


def test_it_decodes_media_within_the_limit(media: dict[str, bytes], speech: Speech) -> None:
    audio = decode(media["flac"], max_seconds=speech.duration + 1)

    assert audio.duration == pytest.approx(speech.duration, abs=DURATION_TOLERANCE)


def _mp3_lying_about_its_length(speech: Speech, repeats: int) -> bytes:
    """An mp3 whose Xing/Info header claims 20 frames (about half a second)."""
    data = bytearray(encode(np.tile(speech.samples, repeats), speech.sample_rate, "mp3"))
    info = data.find(b"Info")
    assert info > 0
    data[info + 8 : info + 12] = struct.pack(">I", 20)
    return bytes(data)


def test_it_stops_decoding_when_media_lies_about_its_length(speech: Speech) -> None:
    data = _mp3_lying_about_its_length(speech, repeats=10)
    assert (probe(data).duration or 0) < 1.0
    reader = CountingReader(data)

    with pytest.raises(MediaTooLong):
        decode(cast(BinaryIO, reader), max_seconds=2.0)

    # Decoding stopped near the cap instead of running through the whole file.
    assert reader.bytes_read < len(data) / 2


def test_it_decodes_all_of_media_that_understates_its_length(speech: Speech) -> None:
    audio = decode(_mp3_lying_about_its_length(speech, repeats=3))

    assert audio.duration == pytest.approx(3 * speech.duration, abs=DURATION_TOLERANCE)


def test_it_follows_a_sample_rate_change_midway(
    media: dict[str, bytes], speech: Speech, expected: np.ndarray
) -> None:
    # Joined mp3s at 22.05 kHz and 16 kHz, as stitched podcast episodes can be.
    at_16k = encode((expected * 32767).astype(np.int16), 16000, "mp3")

    audio = decode(media["mp3"] + at_16k)

    assert audio.duration == pytest.approx(2 * speech.duration, abs=2 * DURATION_TOLERANCE)
    assert similarity(expected, audio.samples[: len(expected)]) > 0.8
    assert similarity(expected, audio.samples[-len(expected) :]) > 0.8


def test_it_decodes_what_a_wav_with_an_oversized_header_holds(
    media: dict[str, bytes], speech: Speech, expected: np.ndarray
) -> None:
    data = bytearray(media["wav"])
    data[4:8] = struct.pack("<I", 0x7FFFFF00)
    chunk = data.find(b"data")
    data[chunk + 4 : chunk + 8] = struct.pack("<I", 0x7FFFFFF0)

    audio = decode(bytes(data), max_seconds=60)

    assert audio.duration == pytest.approx(speech.duration, abs=0.01)
    assert similarity(expected, audio.samples) > 0.99


def _tone(seconds: float, rate: int, dtype: str = "float32") -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 300 * t)).astype(dtype)


BOMBS = {
    "flac-16hz": lambda: flac_bomb(16),  # 55 bytes, 4,096 s
    "flac-8hz": lambda: flac_bomb(8),
    "flac-44k-with-frames-at-16hz": lambda: flac_bomb(44100, frames=2, frame_rate=16),
    "matroska-flac-16hz": lambda: remuxed(flac_bomb(16, frames=2), "matroska"),
    "ogg-flac-16hz": lambda: remuxed(flac_bomb(16, frames=2), "ogg"),
    "wav-2ghz": lambda: bomb_wav(np.zeros(100_000, np.int16), 2_000_000_000),
}


@pytest.mark.parametrize("bomb", BOMBS)
def test_it_refuses_sample_rates_no_real_media_uses(bomb: str) -> None:
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode(BOMBS[bomb](), max_seconds=600)

    assert excinfo.value.code == "unsupported_sample_rate"
    assert "Hz" in excinfo.value.message


def test_the_rates_decoded_run_from_1_to_768_khz() -> None:
    for rate in (MIN_RATE, 8000, MAX_RATE):
        audio = decode(bomb_wav(_tone(1.5, rate), rate), max_seconds=600)

        assert audio.duration == pytest.approx(1.5, abs=0.01)
        assert similarity(_tone(1.5, SAMPLE_RATE), audio.samples) > 0.9
    for rate in (MIN_RATE - 1, MAX_RATE + 1):
        with pytest.raises(UnsupportedMedia):
            decode(bomb_wav(_tone(1.5, rate), rate), max_seconds=600)


def test_raw_pcm_takes_the_same_rates() -> None:
    assert from_pcm16(b"\x00\x00" * 1000, MIN_RATE, 1).duration == pytest.approx(1.0)
    for rate in (MIN_RATE - 1, MAX_RATE + 1, 0):
        with pytest.raises(ValueError, match="rate"):
            from_pcm16(b"\x00\x00" * 1000, rate, 1)


@pytest.fixture
def resampled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every block of 16 kHz samples the resampler has made."""
    lengths: list[int] = []
    real = audio_module._frame_samples

    def counting(frame: av.AudioFrame) -> np.ndarray:
        samples = real(frame)
        lengths.append(len(samples))
        return samples

    monkeypatch.setattr(audio_module, "_frame_samples", counting)
    return lengths


def test_a_frame_longer_than_the_limit_is_refused_before_it_is_resampled(
    resampled: list[int],
) -> None:
    # One 13-byte frame of 65.5 s at 1 kHz: a million samples once resampled.
    with pytest.raises(MediaTooLong):
        decode(flac_bomb(1000), max_seconds=10)

    assert sum(resampled) == 0


def test_many_frames_are_refused_at_the_first_past_the_limit(resampled: list[int]) -> None:
    # Ten frames of 65.5 s: the tenth would take the total from 590 s to 655 s.
    with pytest.raises(MediaTooLong):
        decode(flac_bomb(1000, frames=10), max_seconds=600)

    assert 589 * SAMPLE_RATE < sum(resampled) <= 600 * SAMPLE_RATE


def test_a_refused_decode_lets_go_of_its_samples_before_its_error_does() -> None:
    process = psutil.Process()
    decode(flac_bomb(1000), max_seconds=600)  # FFmpeg's one-time allocations
    before = process.memory_info().rss

    try:
        decode(flac_bomb(1000, frames=10), max_seconds=600)
    except MediaTooLong as exc:
        # Held as a server's error handling might hold it: its traceback keeps the frames
        # of the decoder alive until the garbage collector frees the cycle.
        kept = exc
    grown = process.memory_info().rss - before

    assert kept.__traceback__ is not None
    # The 590 s decoded before the refusal are 38 MB.
    assert grown < 15 * 2**20


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_samples_that_are_not_numbers_come_out_as_silence(dtype: str) -> None:
    second = SAMPLE_RATE
    tone = _tone(1, second, dtype)
    poison = [np.nan, -np.nan, np.inf, -np.inf, 1e30, -3e38]
    blocks = [tone] + [np.full(second, value, dtype) for value in poison] + [tone]

    audio = decode(bomb_wav(np.concatenate(blocks), second))

    samples = audio.samples.reshape(len(blocks), second)
    assert np.isfinite(audio.samples).all()
    # A filter's length around each edge may mix a block with the next one.
    middle = samples[:, second // 4 : -second // 4]
    assert not middle[1:5].any()  # NaN and infinities: silence
    np.testing.assert_array_equal(middle[5], 1.0)  # far over full scale: clipped
    np.testing.assert_array_equal(middle[6], -1.0)
    assert similarity(tone, samples[0]) > 0.99
    assert similarity(tone, samples[-1]) > 0.99


def test_a_nan_sample_in_speech_silences_only_milliseconds_around_it(speech: Speech) -> None:
    clean = reference(speech, 8000)
    poisoned = clean.copy()
    poisoned[800::800] = np.nan  # ten a second, each spread by the resampler's filter
    count = len(poisoned[800::800])

    heard = decode(bomb_wav(poisoned, 8000)).samples
    meant = decode(bomb_wav(clean, 8000)).samples

    assert np.isfinite(heard).all()
    changed = np.count_nonzero(heard != meant)
    # The resampler's filter spreads each NaN over 4 ms (64 samples at 16 kHz).
    assert 0 < changed <= count * 5 * SAMPLE_RATE // 1000
    assert similarity(meant, heard) > 0.95


def _hls_playlist(canary: Canary, local: Path) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\n{canary.url}/segment.mp3\n"
        f"#EXTINF:10.0,\nfile://{local}\n"
        f"#EXTINF:10.0,\n{local}\n"
        f"#EXTINF:10.0,\n{local.name}\n"
        "#EXT-X-ENDLIST\n"
    ).encode()


def _ffconcat_list(canary: Canary, local: Path) -> bytes:
    # FFmpeg's "safe" mode already rejects absolute paths and URLs in a concat list, but
    # not relative names: this list alone would read the private file.
    return f"ffconcat version 1.0\nfile '{local.name}'\n".encode()


def _ffconcat_list_with_urls(canary: Canary, local: Path) -> bytes:
    return (f"ffconcat version 1.0\nfile '{canary.url}/part.mp3'\nfile 'file:{local}'\n").encode()


@pytest.fixture
def private_file(media: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file a playlist could point at; relative entries resolve from the working directory."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "private.mp3"
    path.write_bytes(media["mp3"])
    return path


@pytest.mark.parametrize("playlist", [_hls_playlist, _ffconcat_list, _ffconcat_list_with_urls])
@pytest.mark.parametrize("name", ["upload.mp3", "upload.m3u8", "upload.ffconcat"])
def test_it_refuses_playlists_that_point_elsewhere(
    playlist: Callable[[Canary, Path], bytes], name: str, canary: Canary, private_file: Path
) -> None:
    path = private_file.with_name(name)
    path.write_bytes(playlist(canary, private_file))

    for source in (path, path.read_bytes()):
        with pytest.raises(UnsupportedMedia):
            decode(source)
        with pytest.raises(UnsupportedMedia):
            probe(source)

    assert canary.requests == []


def test_the_canary_would_see_a_request(canary: Canary) -> None:
    # Guards the test above: it must be able to fail.
    import urllib.request

    with urllib.request.urlopen(f"{canary.url}/probe") as response:
        response.read()

    assert canary.requests == ["/probe"]


@pytest.mark.parametrize(("rate", "channels"), [(8000, 2), (44100, 1), (16000, 1), (48000, 6)])
def test_it_converts_raw_pcm_to_16k_mono(rate: int, channels: int, speech: Speech) -> None:
    original = reference(speech, rate)
    pcm = np.repeat((original * 32767).astype(np.int16)[:, None], channels, axis=1)

    audio = from_pcm16(pcm.tobytes(), rate, channels)

    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32
    assert audio.duration == pytest.approx(len(original) / rate, abs=0.01)
    assert similarity(reference(speech), audio.samples) > 0.9


def test_it_drops_a_trailing_partial_sample_frame() -> None:
    assert from_pcm16(b"", 16000, 1).duration == 0
    assert len(from_pcm16(b"\x00\x40" * 3, 16000, 2).samples) == 1


def test_write_wav_round_trips(expected: np.ndarray, tmp_path: Path) -> None:
    audio = Audio(expected)

    path = write_wav(audio, tmp_path / "out.wav")

    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() == len(expected)
    back = decode(path)
    # One step of rounding plus the 32767 (write) vs 32768 (read) scale.
    np.testing.assert_allclose(back.samples, expected, atol=2 / 32767)


def test_wav_bytes_clips_instead_of_wrapping_around() -> None:
    loud = Audio(np.array([1.5, -1.5, 0.5], dtype=np.float32))

    with wave.open(io.BytesIO(wav_bytes(loud)), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(3), dtype="<i2")

    assert pcm.tolist() == [32767, -32767, 16384]

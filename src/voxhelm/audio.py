"""Input media: safe decoding of user files to 16 kHz mono float32, probing, and WAV output.

Everything goes through PyAV (the FFmpeg libraries in the ``av`` wheel); there is no ffmpeg
binary. User media is untrusted: FFmpeg can read playlists and concat lists that make it
open other files or URLs, so only plain single-file demuxers are allowed and nested opens
are switched off (see :func:`_open`).
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import av.logging
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer

from voxhelm.errors import MediaTooLong, UnsupportedMedia

SAMPLE_RATE = 16000
"""The rate every engine gets its audio at."""

ALLOWED_DEMUXERS = frozenset(
    {"wav", "w64", "aiff", "caf", "mp3", "aac", "flac", "ogg", "mov", "matroska", "avi"}
)
"""FFmpeg demuxers that read one self-contained file and never open another one.

FFmpeg names some demuxers with a comma list (``mov,mp4,m4a,3gp,3g2,mj2``,
``matroska,webm``); a demuxer is allowed when any name in its list is here. Everything
else is refused, above all those that follow references: ``hls``, ``dash``, ``concat``,
``image2``, ``sdp``, ``rtsp``, ``tee``, ``lavfi``, ``subfile``.
"""

_OPEN_OPTIONS = {
    # Enforced inside avformat_open_input, before a refused demuxer reads its header.
    "format_whitelist": ",".join(sorted(ALLOWED_DEMUXERS)),
    # Input comes in through a Python file object, so the top level uses no protocol; an
    # empty list stops any demuxer from opening a nested URL (file:, http:, ...) as well.
    "protocol_whitelist": "",
}

# Less audio than this cannot hold a word; it is what a file cut off after its headers
# decodes to (a codec's priming samples), so it is treated as no audio at all.
MIN_SECONDS = 0.1

_UNDECODABLE = "The media could not be decoded."
_NO_AUDIO = "The media contains no audio."

# PyAV starts with FFmpeg's log silenced; pin that so FFmpeg never writes to stderr (its
# messages can name paths and URLs) even if something else turned logging on.
av.logging.set_level(None)

Source = Path | bytes | BinaryIO


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` (16 kHz unless said otherwise)."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learns about a media file without decoding it."""

    format_name: str
    duration: float | None
    has_audio: bool
    has_video: bool


def decode(source: Source, *, max_seconds: float | None = None) -> Audio:
    """Decode the best audio stream of ``source`` to 16 kHz mono float32.

    ``source`` is a path, the file's bytes, or a readable binary file object. Video streams
    are skipped without being decoded.

    Raises :class:`UnsupportedMedia` for anything that is not decodable audio in an allowed
    container (empty input, garbage, no audio stream, less than :data:`MIN_SECONDS` of
    samples), and :class:`MediaTooLong` when the audio is longer than ``max_seconds``:
    refused up front when the container says so, and cut short while decoding when the
    container lied.
    """
    with _open(source) as container:
        stream = container.streams.best("audio")
        if not isinstance(stream, AudioStream):
            raise UnsupportedMedia(_NO_AUDIO)
        if max_seconds is not None:
            declared = _declared_duration(container, stream)
            if declared is not None and declared > max_seconds:
                raise MediaTooLong(_too_long_message(max_seconds))
        samples = _decode_stream(container, stream, max_seconds)
    if len(samples) < MIN_SECONDS * SAMPLE_RATE:
        raise UnsupportedMedia(_NO_AUDIO)
    return Audio(samples)


def probe(source: Source) -> MediaInfo:
    """Read the container header of ``source``: its format, duration and kinds of streams.

    The same demuxer allowlist as :func:`decode` applies; a refused or unreadable file
    raises :class:`UnsupportedMedia`.
    """
    with _open(source) as container:
        best = container.streams.best("audio")
        audio = best if isinstance(best, AudioStream) else None
        return MediaInfo(
            format_name=container.format.name,
            duration=_declared_duration(container, audio),
            has_audio=audio is not None,
            has_video=any(not _is_cover_art(s) for s in container.streams.video),
        )


def from_pcm16(data: bytes, rate: int, channels: int) -> Audio:
    """Convert raw interleaved 16-bit little-endian PCM to 16 kHz mono float32."""
    if channels < 1 or rate < 1:
        raise ValueError("rate and channels must be positive")
    # A trailing partial sample frame (an odd byte, half a stereo pair) is dropped.
    count = len(data) // (2 * channels) * channels
    pcm = np.frombuffer(data, dtype="<i2", count=count).astype(np.int16, copy=False)
    if not count:
        return Audio(np.zeros(0, dtype=np.float32))
    frame = av.AudioFrame.from_ndarray(
        pcm.reshape(1, -1), format="s16", layout=_layout_name(channels)
    )
    frame.sample_rate = rate
    resampler = _MonoResampler()
    return Audio(_join(resampler.convert(frame) + resampler.flush()))


def wav_bytes(audio: Audio) -> bytes:
    """``audio`` as a 16-bit PCM mono WAV file at its sample rate."""
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(pcm.tobytes())
    return buf.getvalue()


def write_wav(audio: Audio, path: Path) -> Path:
    """Write ``audio`` to ``path`` as 16-bit PCM mono WAV (for engines that want a file)."""
    path.write_bytes(wav_bytes(audio))
    return path


class _Nameless:
    """Read (and seek) access to a file object, without its ``name``.

    PyAV passes a file object's ``name`` to FFmpeg as the URL, which uses it to pick a
    demuxer by suffix (``.m3u8``), to resolve relative references, and in error messages.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seekable(self) -> bool:
        seekable = getattr(self._file, "seekable", None)
        return bool(seekable and seekable())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


@contextmanager
def _open(source: Source) -> Iterator[InputContainer]:
    with ExitStack() as stack:
        # FFmpeg only ever gets a nameless file object, never a path or URL, so names like
        # "concat:a|b", "http://..." or a ".m3u8" suffix cannot steer it.
        if isinstance(source, Path):
            try:
                file: BinaryIO = stack.enter_context(source.open("rb"))
            except OSError as exc:
                raise UnsupportedMedia(_UNDECODABLE) from exc
        elif isinstance(source, bytes | bytearray | memoryview):
            file = io.BytesIO(source)
        elif isinstance(source, str):
            raise TypeError("pass a Path or the file's bytes, not a str")
        else:
            file = source
        try:
            container = stack.enter_context(
                av.open(_Nameless(file), mode="r", container_options=_OPEN_OPTIONS)
            )
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise UnsupportedMedia(_UNDECODABLE) from exc
        # Belt and braces for the whitelist option: check what FFmpeg actually chose.
        if not ALLOWED_DEMUXERS.intersection(container.format.name.split(",")):
            raise UnsupportedMedia("This media container is not supported.")
        yield container


def _decode_stream(
    container: InputContainer, stream: AudioStream, max_seconds: float | None
) -> np.ndarray:
    limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    resampler = _MonoResampler()
    chunks: list[np.ndarray] = []
    total = 0
    for other in container.streams:
        if other.index != stream.index:
            other.discard = av.stream.Discard.all
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                # A damaged packet in otherwise good media: skip it, as ffmpeg would.
                continue
            for frame in frames:
                for chunk in resampler.convert(frame):
                    chunks.append(chunk)
                    total += len(chunk)
            if limit is not None and total > limit:
                raise MediaTooLong(_too_long_message(limit / SAMPLE_RATE))
        chunks += resampler.flush()
    except av.FFmpegError as exc:
        raise UnsupportedMedia(_UNDECODABLE) from exc
    samples = _join(chunks)
    if limit is not None and len(samples) > limit:
        raise MediaTooLong(_too_long_message(limit / SAMPLE_RATE))
    return samples


class _MonoResampler:
    """Resamples decoded frames to 16 kHz mono float32.

    One ``AudioResampler`` refuses frames whose rate, layout or sample format differ from
    the first; real files do change mid-stream (mp3s joined at different rates), so a new
    resampler takes over at each change.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def convert(self, frame: av.AudioFrame) -> list[np.ndarray]:
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        chunks = []
        if self._resampler is None or shape != self._input:
            chunks = self.flush()
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            self._input = shape
        return chunks + [_frame_samples(out) for out in self._resampler.resample(frame)]

    def flush(self) -> list[np.ndarray]:
        """The samples still buffered in the resampler."""
        if self._resampler is None:
            return []
        resampler, self._resampler = self._resampler, None
        return [_frame_samples(out) for out in resampler.resample(None)]


def _declared_duration(container: InputContainer, stream: AudioStream | None) -> float | None:
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    # Packed mono float: one plane, shape (1, n).
    samples: np.ndarray = frame.to_ndarray()[0]
    return samples


def _join(chunks: list[np.ndarray]) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    # Lossy decoders overshoot full scale a little; engines expect [-1, 1].
    return np.clip(samples, -1.0, 1.0, out=samples)


def _layout_name(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def _too_long_message(max_seconds: float) -> str:
    return f"The audio is longer than the {max_seconds:g} second limit."

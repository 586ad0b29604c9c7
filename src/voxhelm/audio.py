"""Input media: safe decoding of user files to 16 kHz mono float32, probing, and WAV output.

Everything goes through PyAV (the FFmpeg libraries in the ``av`` wheel); there is no ffmpeg
binary. User media is untrusted: FFmpeg can read playlists and concat lists that make it
open other files or URLs, so only plain single-file demuxers are allowed and nested opens
are switched off (see :func:`_open`).
"""

from __future__ import annotations

import io
import mmap
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

MIN_RATE = 1000
MAX_RATE = 768_000
"""The sample rates decoded, in Hz; media at any other rate is refused.

Real media runs from 8 kHz (telephone speech; 5.5 kHz in old Flash audio) to 384 kHz
(studio masters). Below 1 kHz no speech fits, and the rate is how a tiny file becomes a
huge one: one 13-byte FLAC frame holds 65,535 samples, at 16 Hz over an hour of 16 kHz
audio (262 MB). At 1 kHz and up a decoded sample grows at most 16-fold; far above the
ceiling FFmpeg's resampler builds filter banks of hundreds of megabytes.
"""

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
    container (empty input, garbage, no audio stream, a sample rate outside
    :data:`MIN_RATE`..:data:`MAX_RATE`, less than :data:`MIN_SECONDS` of samples), and
    :class:`MediaTooLong` when the audio is longer than ``max_seconds``: refused up front
    when the container says so, and while decoding, at the first frame that would go over
    it and before that frame is resampled, when the container lied. Samples that are not
    finite numbers (NaN, infinities in float media) come out as silence.
    """
    with _open(source) as container:
        stream = container.streams.best("audio")
        if not isinstance(stream, AudioStream):
            raise UnsupportedMedia(_NO_AUDIO)
        if stream.codec_context.sample_rate:  # 0: only the frames will tell
            _check_rate(stream.codec_context.sample_rate)
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
    if channels < 1 or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"channels must be positive and rate {MIN_RATE} to {MAX_RATE} Hz")
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
    samples = _SampleBuffer()
    samples.extend(resampler.convert(frame) + resampler.flush())
    return Audio(samples.take())


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
    resampler = _MonoResampler(max_seconds)
    samples = _SampleBuffer()
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
                samples.extend(resampler.convert(frame))
        samples.extend(resampler.flush())
        return samples.take()
    except av.FFmpegError as exc:
        raise UnsupportedMedia(_UNDECODABLE) from exc
    finally:
        # A refusal's traceback holds this frame, often in a reference cycle that lives
        # until the garbage collector next runs: up to the limit's worth of samples, per
        # refusal (measured: the server grew by 90 MB a refused file).
        samples.clear()
        resampler.close()


class _MonoResampler:
    """Resamples decoded frames to 16 kHz mono float32, within a length limit.

    One ``AudioResampler`` refuses frames whose rate, layout or sample format differ from
    the first; real files do change mid-stream (mp3s joined at different rates), so a new
    resampler takes over at each change. Every frame's rate is checked, not only the
    stream's: a FLAC frame names its own.

    The limit is counted on the input, frame by frame, *before* the frame is resampled:
    the resampled copy is what can be thousands of times larger than the frame.
    """

    def __init__(self, max_seconds: float | None = None) -> None:
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None
        self._max_seconds = max_seconds
        self._seconds = 0.0

    def convert(self, frame: av.AudioFrame) -> list[np.ndarray]:
        _check_rate(frame.sample_rate)
        self._seconds += frame.samples / frame.sample_rate
        if self._max_seconds is not None and self._seconds > self._max_seconds:
            raise MediaTooLong(_too_long_message(self._max_seconds))
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        chunks = []
        if self._resampler is None or shape != self._input:
            chunks = self.flush()
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            self._input = shape
        return chunks + [_frame_samples(out) for out in self._resampler.resample(frame)]

    def close(self) -> None:
        """Drop the resampler and the samples it holds back."""
        self._resampler = None

    def flush(self) -> list[np.ndarray]:
        """The samples still buffered in the resampler."""
        if self._resampler is None:
            return []
        resampler, self._resampler = self._resampler, None
        return [_frame_samples(out) for out in resampler.resample(None)]


def _check_rate(rate: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise UnsupportedMedia(
            f"Audio at {rate} Hz is not supported: the sample rate must be "
            f"{MIN_RATE} to {MAX_RATE} Hz.",
            code="unsupported_sample_rate",
        )


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


class _SampleBuffer:
    """Decoded samples in blocks of a fixed size, joined once at the end.

    Joining thousands of per-frame arrays holds the audio twice, and growing one array
    copies it (numpy even zero-fills what it adds): either peaked at over 90 MB for 590 s
    (38 MB) of audio, against under 60 MB here. Blocks are filled in place, then cleaned
    and copied into the result one at a time, each unmapped as soon as it is copied.
    Blocks and result are memory mappings of their own (:func:`_mapped`), because glibc
    keeps freed heap memory of a few MB in the arena of the thread that decoded.
    """

    BLOCK = 1 << 20  # samples: 65 s, 4 MB

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._free = 0  # samples still unwritten in the last block

    def extend(self, chunks: list[np.ndarray]) -> None:
        for chunk in chunks:
            rest = chunk
            while len(rest):
                if not self._free:
                    self._blocks.append(_mapped(self.BLOCK))
                    self._free = self.BLOCK
                used = self.BLOCK - self._free
                count = min(self._free, len(rest))
                self._blocks[-1][used : used + count] = rest[:count]
                self._free -= count
                rest = rest[count:]

    def take(self) -> np.ndarray:
        """The samples, cleaned (the buffer is left empty)."""
        blocks, free = self._blocks, self._free
        self._blocks, self._free = [], 0
        samples = _mapped(len(blocks) * self.BLOCK - free)
        blocks.reverse()
        start = 0
        while blocks:
            block = blocks.pop()[: min(self.BLOCK, len(samples) - start)]
            samples[start : start + len(block)] = _cleaned(block)
            start += len(block)
        return samples

    def clear(self) -> None:
        self._blocks, self._free = [], 0


def _mapped(count: int) -> np.ndarray:
    """An uninitialized float32 array in an anonymous memory mapping of its own: the
    pages are returned to the system when the array goes, whatever the C heap keeps."""
    if not count:
        return np.zeros(0, dtype=np.float32)
    return np.frombuffer(mmap.mmap(-1, count * 4), dtype=np.float32)


def _cleaned(samples: np.ndarray) -> np.ndarray:
    """``samples`` (float32, changed in place) as engines want them: finite, in [-1, 1]."""
    # Float media can hold NaN and infinities (the resampler spreads them to the samples
    # around); Whisper turns them into minutes of garbage tokens. They carry no sound.
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    # Lossy decoders overshoot full scale a little; engines expect [-1, 1].
    return np.clip(samples, -1.0, 1.0, out=samples)


def _layout_name(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def _too_long_message(max_seconds: float) -> str:
    return f"The audio is longer than the {max_seconds:g} second limit."

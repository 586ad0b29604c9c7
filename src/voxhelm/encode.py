"""Encoding mono PCM into the audio (and small video) containers clients ask for, with PyAV
(Ogg Vorbis with libsndfile)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import numpy as np
import soundfile
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

MIME_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "webm": "audio/webm",
    "mp4": "audio/mp4",
    "pcm": "audio/pcm",
}
"""The Content-Type to send with each audio format :func:`encode` writes."""

VIDEO_MIME_TYPES: dict[str, str] = {"mp4": "video/mp4", "webm": "video/webm"}
"""The Content-Type of each file :func:`encode_video_with_audio` writes."""


@dataclass(frozen=True)
class _Target:
    muxer: str
    codec: str
    # None keeps the input rate; some encoders only run at fixed rates.
    rate: int | None = None
    options: tuple[tuple[str, str], ...] = ()


_TARGETS: dict[str, _Target] = {
    "wav": _Target("wav", "pcm_s16le"),
    "mp3": _Target("mp3", "libmp3lame"),
    # Opus runs at 48 kHz only.
    "opus": _Target("ogg", "libopus", rate=48000),
    "aac": _Target("adts", "aac"),
    "m4a": _Target("ipod", "aac"),
    "flac": _Target("flac", "flac"),
    "webm": _Target("webm", "libopus", rate=48000),
    "mp4": _Target("mp4", "aac"),
}

_VIDEO_CODECS = {"mp4": ("libx264", "yuv420p"), "webm": ("libvpx", "yuv420p")}
_VIDEO_SIZE = 64
_VIDEO_FPS = 5

FORMATS = (*_TARGETS, "ogg", "pcm")
"""Every ``fmt`` that :func:`encode` accepts."""


def encode(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode mono ``samples`` (int16, or float32 in [-1, 1]) at ``sample_rate`` as ``fmt``.

    ``fmt`` is one of :data:`FORMATS`. ``pcm`` is raw 16-bit little-endian samples at the input
    rate with no header; every other format is a complete file in its usual container
    (``ogg`` is Vorbis, ``opus`` is Opus in Ogg, ``aac`` is ADTS, ``m4a``/``mp4`` are AAC in MP4,
    ``webm`` is Opus in WebM).
    """
    pcm = _to_int16(samples)
    if fmt == "pcm":
        return pcm.astype("<i2", copy=False).tobytes()
    if fmt == "ogg":
        vorbis = _Vorbis(sample_rate)
        return vorbis.write(pcm) + vorbis.finish()
    target = _target(fmt)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=target.muxer) as container:
        stream = _add_audio_stream(container, target, sample_rate)
        _encode_audio(container, stream, pcm, sample_rate)
    return buf.getvalue()


class StreamEncoder:
    """Encodes mono audio piece by piece; each call returns the bytes that are ready.

    For streaming a response while it is synthesized: the output goes to a sink that cannot
    seek, so the muxer never goes back to patch a header, and every packet is flushed at
    once. ``mp3``, ``ogg``, ``opus``, ``aac`` (ADTS), ``flac`` and ``pcm`` stream as they
    are; a streamed ``wav`` has the "unknown length" sizes (0xFFFFFFFF) in its header and a
    streamed ``flac`` no total sample count (decoders read both to the end); ``ogg`` (Vorbis)
    comes an Ogg page (about 4 KiB) at a time. ``rate`` is the
    output rate (default: the input's, or the codec's fixed rate); ``pcm`` is 16-bit
    little-endian samples at that rate.
    """

    def __init__(self, fmt: str, sample_rate: int, *, rate: int | None = None) -> None:
        self.fmt = fmt
        self.sample_rate = sample_rate
        self._pts = 0
        self._sink = _Sink()
        self._pcm_resampler: av.AudioResampler | None = None
        self._container: OutputContainer | None = None
        self._stream: AudioStream | None = None
        self._vorbis: _Vorbis | None = None
        if fmt in ("pcm", "ogg"):
            if rate is not None and rate != sample_rate:
                self._pcm_resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            if fmt == "ogg":
                self._vorbis = _Vorbis(rate or sample_rate)
            return
        target = _target(fmt)
        options = {"flush_packets": "1"}
        if target.muxer == "ogg":
            options["page_duration"] = "100000"  # microseconds: a page per 0.1 s, not per 1 s
        self._container = av.open(self._sink, mode="w", format=target.muxer, options=options)
        self._stream = _add_audio_stream(
            self._container, target, target.rate or rate or sample_rate
        )

    def encode(self, samples: np.ndarray) -> bytes:
        """Add mono ``samples`` (int16, or float in [-1, 1]); the bytes ready so far."""
        pcm = _to_int16(samples)
        if not len(pcm):
            return b""
        frame = _mono_frame(pcm, self.sample_rate, pts=self._pts)
        self._pts += len(pcm)
        if self._container is None:
            if self._pcm_resampler is not None:
                pcm = _pcm_samples(self._pcm_resampler.resample(frame))
            if self._vorbis is not None:
                return self._vorbis.write(pcm)
            return pcm.astype("<i2", copy=False).tobytes()
        assert self._stream is not None
        self._container.mux(self._stream.encode(frame))
        return self._sink.take()

    def finish(self) -> bytes:
        """Flush the encoder and close the file; the last bytes."""
        if self._container is None:
            rest = np.zeros(0, dtype=np.int16)
            if self._pcm_resampler is not None:
                resampler, self._pcm_resampler = self._pcm_resampler, None
                rest = _pcm_samples(resampler.resample(None))
            if self._vorbis is not None:
                return self._vorbis.write(rest) + self._vorbis.finish()
            return rest.astype("<i2", copy=False).tobytes()
        assert self._stream is not None
        container, self._container = self._container, None
        container.mux(self._stream.encode(None))
        container.close()
        return self._sink.take()

    def close(self) -> None:
        """Drop an unfinished encoding (its bytes are discarded)."""
        if self._vorbis is not None:
            self._vorbis.close()
        if self._container is not None:
            container, self._container = self._container, None
            container.close()


class _Sink:
    """A write-only file: PyAV sees no ``seek``, so it treats the output as a stream."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class _Vorbis:
    """Mono Vorbis in Ogg, written by libsndfile (through soundfile) as the samples come.

    FFmpeg's own Vorbis encoder, the only one in PyAV's wheels (they have no libvorbis),
    encodes stereo only; libsndfile brings libvorbis. It writes each Ogg page once it is
    full (about 4 KiB) and, past the header, only appends, so the file streams.
    """

    def __init__(self, sample_rate: int) -> None:
        self._sink = _AppendOnly()
        self._file = soundfile.SoundFile(
            self._sink,
            mode="w",
            samplerate=sample_rate,
            channels=1,
            format="OGG",
            subtype="VORBIS",
        )

    def write(self, pcm: np.ndarray) -> bytes:
        if len(pcm):
            self._file.write(pcm)
        return self._sink.take()

    def finish(self) -> bytes:
        self._file.close()
        return self._sink.take()

    def close(self) -> None:
        self._file.close()


class _AppendOnly(_Sink):
    """A sink libsndfile can write to: it asks for the position and the length (both the end
    of what was written) and never goes back for an Ogg file."""

    def __init__(self) -> None:
        super().__init__()
        self._written = 0

    def write(self, data: bytes) -> int:
        self._written += len(data)
        return super().write(data)

    def tell(self) -> int:
        return self._written

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: 0, io.SEEK_CUR: self._written, io.SEEK_END: self._written}
        if target[whence] + offset != self._written:
            raise io.UnsupportedOperation("an append-only stream cannot seek back")
        return self._written


def _pcm_samples(frames: list[av.AudioFrame]) -> np.ndarray:
    if not frames:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.int16)


def encode_video_with_audio(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """A real video file (``mp4``: H.264 + AAC, ``webm``: VP8 + Opus) of black frames.

    The video track is 64x64 at 5 fps and lasts as long as the audio: a small but
    realistic input for paths that must pull the audio out of a video.
    """
    if fmt not in _VIDEO_CODECS:
        raise ValueError(f"no video encoding for {fmt!r}; use one of {sorted(_VIDEO_CODECS)}")
    pcm = _to_int16(samples)
    target = _TARGETS[fmt]
    codec, pix_fmt = _VIDEO_CODECS[fmt]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=target.muxer) as container:
        video = cast(VideoStream, container.add_stream(codec, rate=_VIDEO_FPS))
        video.width = video.height = _VIDEO_SIZE
        video.pix_fmt = pix_fmt
        audio = _add_audio_stream(container, target, sample_rate)
        black = np.zeros((_VIDEO_SIZE, _VIDEO_SIZE, 3), dtype=np.uint8)
        n_frames = max(1, int(np.ceil(len(pcm) / sample_rate * _VIDEO_FPS)))
        for index in range(n_frames):
            frame = av.VideoFrame.from_ndarray(black, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, _VIDEO_FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        _encode_audio(container, audio, pcm, sample_rate)
    return buf.getvalue()


def _target(fmt: str) -> _Target:
    try:
        return _TARGETS[fmt]
    except KeyError:
        raise ValueError(f"unknown audio format {fmt!r}; use one of {FORMATS}") from None


def _to_int16(samples: np.ndarray) -> np.ndarray:
    if samples.ndim != 1:
        raise ValueError("expected mono samples (a 1-D array)")
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.floating):
        pcm: np.ndarray = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
        return pcm
    raise ValueError(f"expected int16 or float samples, got {samples.dtype}")


def _add_audio_stream(container: OutputContainer, target: _Target, sample_rate: int) -> AudioStream:
    stream = cast(
        AudioStream,
        container.add_stream(
            target.codec, rate=target.rate or sample_rate, options=dict(target.options)
        ),
    )
    stream.layout = "mono"
    return stream


def _encode_audio(
    container: OutputContainer, stream: AudioStream, pcm: np.ndarray, sample_rate: int
) -> None:
    # PyAV's encoder resamples and re-frames to whatever the codec needs (rate, sample
    # format, channel layout, fixed frame size), so one big input frame is enough.
    container.mux(stream.encode(_mono_frame(pcm, sample_rate)))
    container.mux(stream.encode(None))


def _mono_frame(pcm: np.ndarray, sample_rate: int, *, pts: int = 0) -> av.AudioFrame:
    """Mono int16 ``pcm`` as one frame starting ``pts`` samples in."""
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = sample_rate
    frame.pts = pts
    frame.time_base = Fraction(1, sample_rate)
    return frame

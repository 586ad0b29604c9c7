"""Encoding speech into every output format, checked by decoding it back."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from tests.media import reference, similarity
from tests.speech import SENTENCES, Speech, synthesize
from voxhelm.audio import decode, from_pcm16, probe
from voxhelm.encode import (
    FORMATS,
    MIME_TYPES,
    VIDEO_MIME_TYPES,
    encode,
    encode_video_with_audio,
)

DURATION_TOLERANCE = 0.15

EXPECTED_CODECS = {
    "wav": ("wav", "pcm_s16le"),
    "mp3": ("mp3", "mp3float"),
    "ogg": ("ogg", "vorbis"),
    "opus": ("ogg", "opus"),
    "aac": ("aac", "aac"),
    "m4a": ("mov,mp4,m4a,3gp,3g2,mj2", "aac"),
    "flac": ("flac", "flac"),
    "webm": ("matroska,webm", "opus"),
    "mp4": ("mov,mp4,m4a,3gp,3g2,mj2", "aac"),
}


@pytest.fixture(scope="module")
def speech() -> Speech:
    return synthesize(SENTENCES[0])


@pytest.fixture(scope="module")
def expected(speech: Speech) -> np.ndarray:
    return reference(speech)


def _decode_back(data: bytes, fmt: str, sample_rate: int) -> np.ndarray:
    if fmt == "pcm":
        return from_pcm16(data, sample_rate, 1).samples
    return decode(data).samples


@pytest.mark.parametrize("fmt", FORMATS)
def test_it_encodes_every_format_and_decodes_back(
    fmt: str, speech: Speech, expected: np.ndarray
) -> None:
    data = encode(speech.samples, speech.sample_rate, fmt)

    samples = _decode_back(data, fmt, speech.sample_rate)

    assert len(samples) / 16000 == pytest.approx(speech.duration, abs=DURATION_TOLERANCE)
    assert similarity(expected, samples) > 0.8


@pytest.mark.parametrize("fmt", sorted(EXPECTED_CODECS))
def test_it_uses_the_expected_container_and_codec(fmt: str, speech: Speech) -> None:
    data = encode(speech.samples, speech.sample_rate, fmt)

    with av.open(io.BytesIO(data)) as container:
        codec = container.streams.audio[0].codec_context.name
        assert (container.format.name, codec) == EXPECTED_CODECS[fmt]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_mono(fmt: str, speech: Speech) -> None:
    data = encode(speech.samples, speech.sample_rate, fmt)

    if fmt == "pcm":  # no header to read: one 16-bit sample for each one in
        assert len(data) == 2 * len(speech.samples)
    else:
        assert channels(data) == 1


def channels(data: bytes) -> int:
    """The channel count PyAV reads from the file's header and from its decoded frames."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        counts = {stream.codec_context.channels}
        counts |= {frame.layout.nb_channels for frame in container.decode(stream)}
    assert len(counts) == 1, counts  # the header and the decoded frames agree
    return counts.pop()


def test_it_encodes_float_samples_like_int16(speech: Speech, expected: np.ndarray) -> None:
    floats = speech.samples.astype(np.float32) / 32768.0

    samples = decode(encode(floats, speech.sample_rate, "flac")).samples

    assert similarity(expected, samples) > 0.99


def test_pcm_is_raw_little_endian_int16_at_the_input_rate(speech: Speech) -> None:
    data = encode(speech.samples, speech.sample_rate, "pcm")

    assert np.array_equal(np.frombuffer(data, dtype="<i2"), speech.samples)


def test_it_clips_float_samples_beyond_full_scale() -> None:
    data = encode(np.array([2.0, -2.0, 0.0], dtype=np.float32), 16000, "pcm")

    assert np.frombuffer(data, dtype="<i2").tolist() == [32767, -32767, 0]


def test_it_rejects_unknown_formats_and_multichannel_input(speech: Speech) -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        encode(speech.samples, speech.sample_rate, "aiff")
    with pytest.raises(ValueError, match="mono"):
        encode(np.zeros((2, 100), np.int16), 16000, "wav")


def test_every_format_has_a_mime_type() -> None:
    assert set(MIME_TYPES) == set(FORMATS)
    assert MIME_TYPES["mp3"] == "audio/mpeg"
    assert MIME_TYPES["opus"] == "audio/opus"
    assert MIME_TYPES["pcm"] == "audio/pcm"
    assert all(mime.startswith("audio/") for mime in MIME_TYPES.values())


@pytest.mark.parametrize(
    ("fmt", "video_codec", "audio_codec"), [("mp4", "h264", "aac"), ("webm", "vp8", "opus")]
)
def test_it_makes_real_video_files_with_an_audio_track(
    fmt: str, video_codec: str, audio_codec: str, speech: Speech, expected: np.ndarray
) -> None:
    data = encode_video_with_audio(speech.samples, speech.sample_rate, fmt)

    with av.open(io.BytesIO(data), mode="r") as container:
        video = container.streams.video[0]
        assert video.codec_context.name == video_codec
        assert (video.codec_context.width, video.codec_context.height) == (64, 64)
        assert container.streams.audio[0].codec_context.name == audio_codec
        frames = len(list(container.decode(video)))
    assert frames == pytest.approx(speech.duration * 5, abs=1)
    assert probe(data).has_video
    assert similarity(expected, decode(data).samples) > 0.8
    assert fmt in VIDEO_MIME_TYPES


def test_it_has_no_video_encoding_for_audio_only_formats(speech: Speech) -> None:
    with pytest.raises(ValueError, match="no video encoding"):
        encode_video_with_audio(speech.samples, speech.sample_rate, "mp3")

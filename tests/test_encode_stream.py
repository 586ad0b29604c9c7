"""The streaming encoder: bytes come out piece by piece and decode to the whole signal."""

from __future__ import annotations

import numpy as np
import pytest

from tests.media import similarity
from tests.speech import SENTENCES, synthesize
from tests.test_encode import channels
from voxhelm.audio import decode, from_pcm16
from voxhelm.encode import StreamEncoder

STREAMED = ("mp3", "ogg", "opus", "aac", "flac", "pcm", "wav")
DURATION_TOLERANCE = 0.15


@pytest.mark.parametrize("fmt", STREAMED)
def test_each_piece_gives_bytes_and_the_whole_decodes(fmt: str) -> None:
    speech = [synthesize(s) for s in SENTENCES]
    rate = speech[0].sample_rate
    encoder = StreamEncoder(fmt, rate)
    pieces = [encoder.encode(s.samples) for s in speech]
    pieces.append(encoder.finish())
    # Output starts before the input ends: that is what makes the response stream.
    assert all(pieces[:2]), [len(p) for p in pieces]
    data = b"".join(pieces)
    decoded = from_pcm16(data, rate, 1) if fmt == "pcm" else decode(data)
    expected = sum(len(s.samples) for s in speech) / rate
    assert decoded.duration == pytest.approx(expected, abs=DURATION_TOLERANCE)
    if fmt != "pcm":
        assert channels(data) == 1
    whole = np.concatenate([s.samples for s in speech])
    reference = decode(synthesize_wav(whole, rate)).samples
    assert similarity(reference, decoded.samples) > 0.8


def synthesize_wav(samples: np.ndarray, rate: int) -> bytes:
    from voxhelm.encode import encode

    return encode(samples, rate, "wav")


def test_pcm_is_resampled_to_the_rate_asked_for() -> None:
    speech = synthesize(SENTENCES[0])
    encoder = StreamEncoder("pcm", speech.sample_rate, rate=24000)
    data = encoder.encode(speech.samples) + encoder.finish()
    assert len(data) % 2 == 0
    assert len(data) / 2 / 24000 == pytest.approx(speech.duration, abs=0.01)


def test_a_streamed_wav_says_its_length_is_unknown() -> None:
    encoder = StreamEncoder("wav", 22050)
    data = encoder.encode(np.zeros(22050, dtype=np.int16)) + encoder.finish()
    assert data[:4] == b"RIFF" and data[4:8] == b"\xff\xff\xff\xff"


def test_closing_an_unfinished_encoder_is_safe() -> None:
    encoder = StreamEncoder("mp3", 22050)
    encoder.encode(np.zeros(22050, dtype=np.int16))
    encoder.close()
    encoder.close()

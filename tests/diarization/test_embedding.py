"""The bundled CAM++ ONNX model: it reproduces the exported torch model, and it tells
voices apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.diarization.conversation import has_espeak, speak
from voxhelm import audio
from voxhelm.diarization.embedding import (
    MODEL_PATH,
    SpeakerEmbedder,
    filterbank,
    frame_count,
    model_version,
    normalize,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "diarization"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_onnx_model_reproduces_the_torch_embedding_of_the_fixture_clip() -> None:
    # scripts/export_campplus.py stored the torch model's embedding of this clip, computed
    # from the same Kaldi features; the ONNX graph and the feature pipeline must match it.
    reference = json.loads((DATA / "campplus-fixture-embedding.json").read_text())
    samples = audio.decode(DATA / "campplus-fixture.wav").samples
    frames = filterbank(samples)
    assert len(frames) == reference["frames"] == frame_count(len(samples))
    embedding = SpeakerEmbedder().embed_frames([frames])[0]
    assert embedding.shape == (192,)
    assert cosine(embedding, np.array(reference["embedding"])) >= 0.999


def test_the_model_file_is_the_one_the_reference_was_made_with() -> None:
    reference = json.loads((DATA / "campplus-fixture-embedding.json").read_text())
    assert model_version() == f"campplus:{reference['model_sha256'][:12]}"
    assert MODEL_PATH.stat().st_size > 20_000_000


def test_embeddings_are_unit_length_and_windows_batch_like_single_runs() -> None:
    samples = audio.decode(DATA / "campplus-fixture.wav").samples
    embedder = SpeakerEmbedder()
    frames = filterbank(samples)
    blocks = [frames[0:148], frames[75:223], frames[150:298], frames[0:60]]
    together = embedder.embed_frames(blocks)
    for block, row in zip(blocks, together, strict=True):
        assert cosine(row, embedder.embed_frames([block])[0]) > 0.9999
    vector = embedder.embed(samples)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)


def test_it_refuses_too_little_audio() -> None:
    with pytest.raises(ValueError, match="too little"):
        SpeakerEmbedder().embed(np.zeros(800, dtype=np.float32))


@pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run")
def test_the_same_voice_is_closer_than_a_different_voice() -> None:
    embedder = SpeakerEmbedder()
    piper_a = embedder.embed(speak("piper", "The library closes early on Fridays in summer."))
    piper_b = embedder.embed(speak("piper", "A small boat drifted slowly across the lake."))
    other = embedder.embed(speak("ava", "A small boat drifted slowly across the lake."))
    assert cosine(piper_a, piper_b) > 0.6
    assert cosine(piper_a, piper_b) - cosine(piper_b, other) > 0.3
    assert normalize(np.stack([piper_a, other])).shape == (2, 192)

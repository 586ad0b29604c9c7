"""Speaker embeddings: the bundled CAM++ model (3D-Speaker) on Kaldi fbank, with onnxruntime.

CAM++ maps 80-bin log-Mel filterbank frames (25 ms, 10 ms shift) to a 192-dim vector; two
stretches of the same voice have a high cosine similarity. Features follow the training
recipe: no dither, samples scaled to the int16 range, and the mean over time removed per
embedded window. The filterbank is computed once for the whole recording and windows are
slices of it (Kaldi frames do not depend on their neighbours, so this equals computing each
window alone, at a fraction of the cost).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxhelm.audio import SAMPLE_RATE
from voxhelm.diarization.base import DiarizationUnavailable

MODEL_PATH = Path(__file__).parent / "models" / "campplus.onnx"
MODEL_NAME = "campplus"  # the public name (``known_speaker.embedding_model``)
MEL_BINS = 80
FRAME_SHIFT = 160  # samples (10 ms)
FRAME_LENGTH = 400  # samples (25 ms)
MIN_FRAMES = 10  # below this the statistics pooling has nothing to pool
BATCH = 32
FEED_SAMPLES = 30 * SAMPLE_RATE  # fed to the filterbank in pieces, not as one huge list


def frame_count(samples: int) -> int:
    """Kaldi frames (``snip_edges``) in ``samples`` samples."""
    return 0 if samples < FRAME_LENGTH else 1 + (samples - FRAME_LENGTH) // FRAME_SHIFT


def filterbank(samples: np.ndarray) -> np.ndarray:
    """Log-Mel filterbank frames ``(frames, 80)`` of 16 kHz float samples in [-1, 1]."""
    import kaldi_native_fbank as knf

    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.mel_opts.num_bins = MEL_BINS
    computer = knf.OnlineFbank(options)
    scaled = np.asarray(samples, dtype=np.float32) * 32768.0
    for start in range(0, len(scaled), FEED_SAMPLES):
        computer.accept_waveform(SAMPLE_RATE, scaled[start : start + FEED_SAMPLES])
    computer.input_finished()
    count = computer.num_frames_ready
    if not count:
        return np.zeros((0, MEL_BINS), dtype=np.float32)
    return np.asarray([computer.get_frame(i) for i in range(count)], dtype=np.float32)


def frames_between(frames: np.ndarray, start: int, end: int) -> np.ndarray:
    """The filterbank frames of samples ``[start, end)`` (at least :data:`MIN_FRAMES` where
    the recording has them, so a stretch at its very end can still be embedded)."""
    first = start // FRAME_SHIFT
    count = max(MIN_FRAMES, frame_count(end - start))
    block = frames[first : first + count]
    if len(block) < MIN_FRAMES:
        block = frames[max(0, len(frames) - MIN_FRAMES) :]
    return block


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.asarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


@functools.cache
def model_version() -> str:
    """``campplus:<first 12 hex of the ONNX file's SHA-256>``: which weights made a vector."""
    digest = hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest()
    return f"{MODEL_NAME}:{digest[:12]}"


class SpeakerEmbedder:
    """CAM++ embeddings with onnxruntime on the CPU; the session loads on first use.

    Thread-safe: onnxruntime sessions may run concurrently, and loading is locked.
    """

    def __init__(self, path: Path = MODEL_PATH, *, threads: int = 1) -> None:
        self.path = path
        self.threads = threads
        self._session: Any = None
        self._lock = threading.Lock()

    def check(self) -> list[str]:
        """Problems that would stop the embedder from loading; [] if none."""
        if not self.path.is_file():
            return [f"The CAM++ model file is missing ({self.path.name}); reinstall voxhelm."]
        return []

    def _loaded(self) -> Any:
        with self._lock:
            if self._session is None:
                if self.check():
                    raise DiarizationUnavailable(
                        "The embedded speaker-embedding model is not installed."
                    )
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3  # its warnings name file paths
                self._session = onnxruntime.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
            return self._session

    def embed_frames(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """One embedding row per feature block ``(frames_i, 80)``; blocks are mean-normalized
        here. Blocks of equal length run as one batch. Rows are not length-normalized."""
        session = self._loaded()
        out = np.zeros((len(frames), 192), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for index, block in enumerate(frames):
            if len(block) < MIN_FRAMES:
                raise ValueError(f"a feature block needs at least {MIN_FRAMES} frames")
            by_length.setdefault(len(block), []).append(index)
        for indices in by_length.values():
            for start in range(0, len(indices), BATCH):
                chosen = indices[start : start + BATCH]
                batch = np.stack([frames[i] - frames[i].mean(axis=0) for i in chosen])
                (result,) = session.run(None, {"features": batch.astype(np.float32)})
                out[chosen] = result
        return out

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """The unit-length embedding of one stretch of 16 kHz audio (≥ 0.1 s)."""
        frames = filterbank(samples)
        if len(frames) < MIN_FRAMES:
            raise ValueError("too little audio to embed")
        vector: np.ndarray = normalize(self.embed_frames([frames]))[0]
        return vector


@functools.cache
def shared_embedder() -> SpeakerEmbedder:
    """The process-wide CAM++ embedder (one ONNX session, loaded on first use)."""
    return SpeakerEmbedder()

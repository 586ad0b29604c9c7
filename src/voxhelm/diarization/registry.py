"""The configured diarization engine: one shared instance per backend and settings."""

from __future__ import annotations

import functools

from voxhelm.config import DiarizationConfig
from voxhelm.diarization.base import DiarizationUnavailable, Diarizer

NOT_CONFIGURED = (
    "Diarization was requested, but no diarization backend is configured. "
    "Submit the job without diarization."
)


def diarizer(config: DiarizationConfig) -> Diarizer:
    """The engine for ``config`` (cached per backend, model, token and device).

    Raises :class:`DiarizationUnavailable` for ``VOXHELM_DIARIZATION_BACKEND=none``.
    """
    if config.backend == "onnx":
        return _onnx()
    if config.backend == "pyannote":
        return _pyannote(config.pyannote_model, config.huggingface_token, config.pyannote_device)
    raise DiarizationUnavailable(NOT_CONFIGURED)


@functools.cache
def _onnx() -> Diarizer:
    from voxhelm.diarization.onnx import OnnxDiarizer

    return OnnxDiarizer()


@functools.cache
def _pyannote(model: str, token: str, device: str) -> Diarizer:
    from voxhelm.diarization.pyannote import PyannoteDiarizer

    return PyannoteDiarizer(model, token, device)

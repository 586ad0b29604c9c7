"""The guarded pyannote.audio adapter (``pyannote``, optional extra ``diarization``).

pyannote's pretrained pipelines are downloaded from the Hugging Face hub on first use and
are gated: the token's account must have accepted the model terms. Everything is checked
lazily, on the first diarization, in the reference's order: a token, the extra, loading the
pipeline (the keyword ``token``, falling back to ``use_auth_token`` for pyannote 3), the
device. The pipeline gets the decoded waveform (never a path, so pyannote's own decoder is
not involved) and the caller's count hints as keyword arguments.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import Any, ClassVar

from voxhelm.audio import SAMPLE_RATE, Audio
from voxhelm.diarization.base import (
    DiarizationError,
    DiarizationFault,
    DiarizationUnavailable,
    Diarizer,
    SpeakerHints,
    Turn,
)

logger = logging.getLogger("voxhelm.diarization")

DEVICES = ("auto", "cpu", "cuda", "mps")
MISSING_TOKEN_MESSAGE = (
    "VOXHELM_HUGGINGFACE_TOKEN must be set for VOXHELM_DIARIZATION_BACKEND=pyannote."  # noqa: S105
)
NO_EXTRA = (
    "pyannote.audio is not installed. Install the optional extra: uv sync --extra diarization "
    "(or pip install 'voxhelm[diarization]')."
)
LOAD_FAILED = (
    "The pyannote pipeline could not be loaded. Check VOXHELM_PYANNOTE_MODEL, the token, and "
    "that the token's account accepted the terms of every gated model it needs "
    "(see the server log)."
)
UNEXPECTED_RESULT = "pyannote.audio returned an unexpected diarization result."
FAILED = "pyannote diarization failed (see the server log)."


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise DiarizationUnavailable(NO_EXTRA) from None
    return torch


def resolve_device(requested: str, torch: Any) -> str:
    """``auto`` → mps, then cuda, then cpu; an explicit device must be available here."""
    requested = (requested or "auto").strip().lower()
    if requested not in DEVICES:
        raise DiarizationUnavailable(
            f"Unsupported pyannote device '{requested}'. Supported values: auto, cpu, cuda, mps."
        )
    mps = bool(getattr(getattr(torch.backends, "mps", None), "is_available", lambda: False)())
    available = {"cpu": True, "cuda": bool(torch.cuda.is_available()), "mps": mps}
    if requested == "auto":
        return "mps" if mps else ("cuda" if available["cuda"] else "cpu")
    if not available[requested]:
        raise DiarizationUnavailable(
            f"pyannote device '{requested}' is not available on this host."
        )
    return requested


def read_turns(result: Any) -> list[Turn]:
    """Turns from a pyannote result: an Annotation, or pyannote 4's wrapper holding one."""
    wrapped = ("speaker_diarization", "exclusive_speaker_diarization")
    candidates = (result, *(getattr(result, name, None) for name in wrapped))
    annotation = next((a for a in candidates if hasattr(a, "itertracks")), None)
    if annotation is None:
        raise DiarizationFault(UNEXPECTED_RESULT)
    try:
        return [
            Turn(float(segment.start), float(segment.end), str(label))
            for segment, _track, label in annotation.itertracks(yield_label=True)
        ]
    except AttributeError:
        raise DiarizationFault(UNEXPECTED_RESULT) from None


class PyannoteDiarizer(Diarizer):
    """pyannote.audio's pretrained pipeline (``VOXHELM_PYANNOTE_MODEL``) on the best device."""

    name: ClassVar[str] = "pyannote"
    needs_network_for_first_load: ClassVar[bool] = True

    def __init__(self, model: str, token: str, device: str = "auto") -> None:
        self.model = model
        self.token = token
        self.device = device
        self._pipeline: Any = None
        self._lock = threading.Lock()

    def check(self) -> list[str]:
        problems = []
        if not self.token:
            problems.append(f"{MISSING_TOKEN_MESSAGE} (HF_TOKEN is read when it is unset)")
        if importlib.util.find_spec("pyannote") is None:
            problems.append(NO_EXTRA)
        return problems

    def pipeline(self) -> Any:
        """The loaded pipeline, on its device (loaded once, behind a lock)."""
        with self._lock:
            if self._pipeline is None:
                self._pipeline = self._load()
            return self._pipeline

    def _load(self) -> Any:
        if not self.token:
            raise DiarizationUnavailable(MISSING_TOKEN_MESSAGE)
        try:
            from pyannote.audio import Pipeline
        except ImportError:
            raise DiarizationUnavailable(NO_EXTRA) from None
        torch = _torch()
        device = resolve_device(self.device, torch)
        try:
            try:
                pipeline = Pipeline.from_pretrained(self.model, token=self.token)
            except TypeError:  # pyannote.audio 3 names the keyword differently
                pipeline = Pipeline.from_pretrained(self.model, use_auth_token=self.token)
        except Exception:
            # Gated or missing models surface as hub errors whose text may carry URLs.
            logger.exception("pyannote pipeline %r could not be loaded", self.model)
            raise DiarizationUnavailable(LOAD_FAILED) from None
        if pipeline is None:
            logger.error("pyannote returned no pipeline for %r (gated model?)", self.model)
            raise DiarizationUnavailable(LOAD_FAILED)
        pipeline.to(torch.device(device))
        logger.info("pyannote pipeline %r loaded on %s", self.model, device)
        return pipeline

    def diarize(self, audio: Audio, hints: SpeakerHints) -> list[Turn]:
        pipeline = self.pipeline()
        torch = _torch()
        if audio.sample_rate != SAMPLE_RATE:
            raise ValueError("pyannote gets 16 kHz audio")
        waveform = torch.from_numpy(audio.samples.reshape(1, -1).astype("float32"))
        try:
            result = pipeline(
                {"waveform": waveform, "sample_rate": SAMPLE_RATE}, **hints.as_kwargs()
            )
        except DiarizationError:
            raise
        except Exception:
            logger.exception("pyannote diarization failed")
            raise DiarizationFault(FAILED) from None
        return read_turns(result)

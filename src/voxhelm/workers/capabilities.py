"""Capability matching: which remote jobs a worker may claim, and what a worker advertises.

A job needs ``transcribe`` among the worker's ``job_types``; its *resolved* backend and
model (aliases such as ``auto`` or ``whisper-1`` resolve to ``VOXHELM_STT_BACKEND`` and
that backend's model on the server; the fallback backend is not considered) among the
worker's ``backends`` and ``models``; every requested format among ``output_formats``;
and for diarization ``diarization.anonymous``, or for known speakers
``diarization.known_speaker``, the job's embedding model in ``embedding_models`` and
``speakers`` among the output formats. Framework-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voxhelm.batch.request import DiarizationRequest
from voxhelm.config import Config, SttConfig
from voxhelm.diarization.base import KNOWN_STRATEGY
from voxhelm.diarization.embedding import MODEL_NAME as EMBEDDING_MODEL
from voxhelm.formats import ARTIFACT_FORMATS
from voxhelm.stt.registry import concrete_models, resolve
from voxhelm.workers.protocol import (
    SPEAKERS_FORMAT,
    SPEAKERS_KIND,
    Capabilities,
    DiarizationCapabilities,
)

TRANSCRIBE = "transcribe"


@dataclass(frozen=True)
class Requirements:
    """What running one job takes."""

    backend: str
    model: str
    formats: tuple[str, ...]
    strategy: str | None  # None: no diarization
    embedding_model: str = ""


def resolve_backend(model: str, stt: SttConfig) -> tuple[str, str] | None:
    """The concrete (backend, model) a job's model names on this server, or None."""
    try:
        invocations = resolve(model, stt)
    except ValueError:
        return None
    if not invocations:
        return None
    return invocations[0].backend, invocations[0].model


def requirements(
    model: str, formats: Sequence[str], diarization: DiarizationRequest, stt: SttConfig
) -> Requirements | None:
    """The requirements of a job, or None when its model does not resolve here."""
    resolved = resolve_backend(model, stt)
    if resolved is None:
        return None
    strategy = diarization.strategy if diarization.enabled else None
    embedding = ""
    if diarization.known:
        embedding = str(diarization.match.get("embedding_model") or EMBEDDING_MODEL)
    return Requirements(resolved[0], resolved[1], tuple(formats), strategy, embedding)


def matches(capabilities: Capabilities, needs: Requirements) -> bool:
    """Whether a worker with ``capabilities`` can run a job with ``needs``."""
    if TRANSCRIBE not in capabilities.job_types:
        return False
    if needs.backend not in capabilities.backends or needs.model not in capabilities.models:
        return False
    if not set(needs.formats) <= set(capabilities.output_formats):
        return False
    diarization = capabilities.diarization
    if needs.strategy is None:
        return True
    if needs.strategy == KNOWN_STRATEGY:
        return (
            diarization.known_speaker
            and needs.embedding_model in diarization.embedding_models
            and bool({SPEAKERS_FORMAT, SPEAKERS_KIND} & set(capabilities.output_formats))
        )
    return diarization.anonymous


def advertised(config: Config) -> Capabilities:
    """A worker's capabilities, from its own configuration: its STT backend (and fallback),
    the concrete models they serve, every transcript format, and diarization when configured."""
    stt = config.stt
    backends = [stt.backend]
    if stt.fallback_backend and stt.fallback_backend != stt.backend:
        backends.append(stt.fallback_backend)
    if stt.whisperkit.enabled and "whisperkit" not in backends:
        backends.append("whisperkit")
    models = [name for name, backend in concrete_models(stt).items() if backend in backends]
    formats = list(ARTIFACT_FORMATS)
    diarizes = config.diarization.backend not in ("", "none")
    if diarizes:
        formats.append(SPEAKERS_FORMAT)
    return Capabilities(
        job_types=[TRANSCRIBE],
        backends=backends,
        models=models,
        output_formats=formats,
        diarization=DiarizationCapabilities(
            anonymous=diarizes,
            known_speaker=diarizes,
            embedding_models=[EMBEDDING_MODEL] if diarizes else [],
        ),
    )

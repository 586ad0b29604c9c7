"""Capability matching: which remote jobs a worker may claim, and what a worker advertises.

A job needs ``transcribe`` among the worker's ``job_types``; its *resolved* backend and
model (aliases such as ``auto`` or ``whisper-1`` resolve to ``VOXHELM_STT_BACKEND`` and
that backend's model on the server; the fallback backend is not considered) among the
worker's ``backends`` and ``models``; every requested format among ``output_formats``;
and for diarization ``diarization.anonymous``, or for known speakers
``diarization.known_speaker``, the job's embedding model in ``embedding_models`` and
``speakers`` among the output formats. A synthesis job needs ``synthesize`` among the
``job_types``, its voice (resolved at submission) among the ``voices`` and each of its audio
formats among the ``output_formats``; a worker advertises it when its Piper engine can run.
Framework-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voxhelm import tts
from voxhelm.batch.request import DiarizationRequest, JobOutputs, SynthesisRequest
from voxhelm.batch.synthesize import SPEECH_FORMATS
from voxhelm.config import Config, SttConfig
from voxhelm.diarization.base import KNOWN_STRATEGY
from voxhelm.diarization.embedding import MODEL_NAME as EMBEDDING_MODEL
from voxhelm.formats import ARTIFACT_FORMATS
from voxhelm.stt.registry import concrete_models, resolve
from voxhelm.worker_protocol.limits import MAX_NAMES
from voxhelm.worker_protocol.messages import (
    SPEAKERS_FORMAT,
    SPEAKERS_KIND,
    Capabilities,
    DiarizationCapabilities,
)

TRANSCRIBE = "transcribe"
SYNTHESIZE = "synthesize"


@dataclass(frozen=True)
class Requirements:
    """What running one job takes."""

    backend: str
    model: str
    formats: tuple[str, ...]
    strategy: str | None  # None: no diarization
    embedding_model: str = ""
    job_type: str = TRANSCRIBE
    voice: str = ""  # a synthesis job's voice


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


def job_requirements(
    job_type: str,
    model: str,
    input_data: Mapping[str, Any],
    output_data: Mapping[str, Any],
    stt: SttConfig,
) -> Requirements | None:
    """The requirements of a stored job of either type, or None when it cannot run remotely."""
    if job_type == SYNTHESIZE:
        synthesis = SynthesisRequest.from_stored(input_data, output_data)
        return Requirements(
            "piper",
            "piper",
            synthesis.formats,
            None,
            job_type=SYNTHESIZE,
            voice=synthesis.voice or "",
        )
    outputs = JobOutputs.from_stored(output_data)
    return requirements(model, outputs.formats, outputs.diarization, stt)


def matches(capabilities: Capabilities, needs: Requirements) -> bool:
    """Whether a worker with ``capabilities`` can run a job with ``needs``."""
    if needs.job_type not in capabilities.job_types:
        return False
    if needs.job_type == SYNTHESIZE:
        # A job stored without a voice speaks with the worker's default one.
        voice_ok = not needs.voice or needs.voice in capabilities.voices
        return voice_ok and set(needs.formats) <= set(capabilities.output_formats)
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
    the concrete models they serve, every transcript format, diarization when configured,
    and synthesis (its voices, every audio format) when its Piper engine can run."""
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
    job_types = [TRANSCRIBE]
    voices: list[str] = []
    if not tts.engine(config.tts).check():
        job_types.append(SYNTHESIZE)
        formats.extend(SPEECH_FORMATS)
        # The protocol bounds every list; a voice past the bound is not offered.
        voices = tts.catalog(config.tts).names()[:MAX_NAMES]
    return Capabilities(
        job_types=job_types,
        backends=backends,
        models=models,
        output_formats=formats,
        voices=voices,
        diarization=DiarizationCapabilities(
            anonymous=diarizes,
            known_speaker=diarizes,
            embedding_models=[EMBEDDING_MODEL] if diarizes else [],
        ),
    )

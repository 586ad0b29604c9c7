"""Model aliases, backend resolution and fallback: the one table every surface uses.

Rules (the reference's, with ``fasterwhisper`` added):

* an alias (``auto``, ``whisper-1``, ``gpt-4o-mini-transcribe``, ``gpt-4o-transcribe``)
  resolves to ``VOXHELM_STT_BACKEND`` with that backend's configured model;
* ``whisperkit`` and ``VOXHELM_WHISPERKIT_MODEL`` resolve to WhisperKit (when enabled);
* a configured model name picks its backend;
* ``VOXHELM_STT_FALLBACK_BACKEND`` is tried only for alias requests and only when the first
  backend is *unavailable* (an engine that ran and failed is not retried elsewhere).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from voxhelm.audio import Audio
from voxhelm.config import SttConfig
from voxhelm.errors import InvalidInput, ServiceUnavailable
from voxhelm.stt.base import Backend, BackendUnavailable, TranscriptionRequest
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.stt")

ALIASES = frozenset({"auto", "whisper-1", "gpt-4o-mini-transcribe", "gpt-4o-transcribe"})
WHISPERKIT_ALIAS = "whisperkit"


@dataclass(frozen=True)
class Invocation:
    backend: str
    model: str  # the concrete public model name


def default_model(backend: str, config: SttConfig) -> str:
    """The configured model of ``backend`` (what an alias resolves to)."""
    if backend == "fasterwhisper":
        from voxhelm.stt.faster_whisper import public_model_name

        return public_model_name(config.fasterwhisper.model)
    if backend == "whispercpp":
        return config.whispercpp.model
    if backend == "mlx":
        return config.mlx.model
    if backend == "whisperkit":
        return config.whisperkit.model
    raise ValueError(f"unknown STT backend {backend!r}")


def concrete_models(config: SttConfig) -> dict[str, str]:
    """Every configured concrete model name -> its backend (the first backend wins a tie)."""
    models: dict[str, str] = {}
    backends = ["fasterwhisper", "whispercpp", "mlx"]
    if config.whisperkit.enabled:
        backends.append("whisperkit")
    # The configured default backend claims its model name first.
    for backend in sorted(backends, key=lambda b: b != config.backend):
        models.setdefault(default_model(backend, config), backend)
    from voxhelm.stt import multilingual

    if multilingual.is_installed():  # the multilingual extra: served offline by faster-whisper
        models.setdefault(multilingual.MODEL_NAME, "fasterwhisper")
    return models


def accepted_models(config: SttConfig) -> list[str]:
    """Model names a request may use, sorted (for the error message and ``/v1/models``)."""
    names = set(ALIASES) | set(concrete_models(config))
    if config.whisperkit.enabled:
        names.add(WHISPERKIT_ALIAS)
    return sorted(names)


def validate_model(model: str, config: SttConfig) -> str:
    """Return ``model`` if a request may use it, else raise InvalidInput (param ``model``)."""
    if model in accepted_models(config):
        return model
    raise InvalidInput(
        f"Unsupported model '{model}'. Accepted values: {', '.join(accepted_models(config))}.",
        param="model",
        code="model_not_found",
    )


def resolve(model: str, config: SttConfig) -> list[Invocation]:
    """The backends to try for a request model, in order."""
    if model in ALIASES:
        primary = Invocation(config.backend, default_model(config.backend, config))
        fallback = config.fallback_backend
        if fallback and fallback != config.backend:
            return [primary, Invocation(fallback, default_model(fallback, config))]
        return [primary]
    if model == WHISPERKIT_ALIAS:
        return [Invocation("whisperkit", config.whisperkit.model)]
    backend = concrete_models(config).get(model, config.backend)
    return [Invocation(backend, model)]


BackendFactory = Callable[[str, str, SttConfig], Backend]


def _build_backend(name: str, model: str, config: SttConfig) -> Backend:
    if name == "fasterwhisper":
        from dataclasses import replace

        from voxhelm.stt.faster_whisper import FasterWhisperBackend, public_model_name

        fw = config.fasterwhisper
        if model != public_model_name(fw.model):
            fw = replace(fw, model=model)
        return FasterWhisperBackend(fw, config.model_cache_dir)
    if name == "mlx":
        from dataclasses import replace

        from voxhelm.stt.mlx import MlxBackend

        return MlxBackend(replace(config.mlx, model=model))
    if name == "whisperkit":
        from dataclasses import replace

        from voxhelm.stt.whisperkit import WhisperKitBackend

        return WhisperKitBackend(
            replace(config.whisperkit, model=model), api_key=config.whisperkit.api_key
        )
    if name == "whispercpp":
        from dataclasses import replace

        from voxhelm.stt.whisper_cpp import WhisperCppBackend

        return WhisperCppBackend(replace(config.whispercpp, model=model), config.model_cache_dir)
    return UnimplementedBackend(name, model)


class UnimplementedBackend(Backend):
    """Stands for a configured backend this build cannot run; always unavailable."""

    def __init__(self, name: str, model: str) -> None:
        super().__init__(model)
        self.name = name  # type: ignore[misc]

    def check(self) -> list[str]:
        return [f"The STT backend '{self.name}' is not available in this Voxhelm build."]

    def transcribe(self, audio: Audio, request: TranscriptionRequest) -> Transcript:
        raise BackendUnavailable(self.check()[0])


class Engines:
    """Backends built once per (backend, model) and shared by every request."""

    def __init__(self, factory: BackendFactory = _build_backend) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._backends: dict[tuple[str, str], Backend] = {}

    def get(self, invocation: Invocation, config: SttConfig) -> Backend:
        key = (invocation.backend, invocation.model)
        with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                backend = self._factory(invocation.backend, invocation.model, config)
                self._backends[key] = backend
            return backend

    def transcribe(
        self, audio: Audio, model: str, request: TranscriptionRequest, config: SttConfig
    ) -> Transcript:
        """Run the request on the first available backend for ``model``."""
        reasons: list[str] = []
        for invocation in resolve(model, config):
            backend = self.get(invocation, config)
            try:
                return backend.transcribe(audio, request)
            except BackendUnavailable as exc:
                logger.warning("stt backend %s unavailable: %s", invocation.backend, exc)
                reasons.append(f"{invocation.backend}: {exc}")
        logger.error("no STT backend available for model %s: %s", model, "; ".join(reasons))
        raise ServiceUnavailable(
            "No configured STT backend is available.", code="backend_unavailable"
        )

    def reset(self) -> None:
        with self._lock:
            self._backends.clear()


ENGINES = Engines()

"""Model aliases, backend resolution and fallback: the one table every surface uses.

Rules (the reference's, with ``fasterwhisper`` added):

* an alias (``auto``, ``whisper-1``, ``gpt-4o-mini-transcribe``, ``gpt-4o-transcribe``)
  resolves to ``VOXHELM_STT_BACKEND`` with that backend's configured model; so does OpenAI's
  diarizing model, ``gpt-4o-transcribe-diarize``, which only a transcription request may
  name (it asks for speakers, which translations, jobs and voice commands do not answer);
* ``whisperkit`` and ``VOXHELM_WHISPERKIT_MODEL`` resolve to WhisperKit (when enabled);
* a configured model name picks its backend, and so does a model pulled into the model
  cache (``voxhelm models pull``);
* a model the store could pull but that is not installed is refused with
  ``model_not_installed`` naming the pull command, unless ``VOXHELM_MODEL_AUTO_PULL`` is on
  and it is a configured model or one of the catalogue's known names (then its engine pulls
  it on first use, with the pull the model store handed to :meth:`Engines.pull_with` at
  start). Any repository id is only for operators (``voxhelm models pull``, the console):
  a producer must not make the server download whatever the Hub holds until the disk fills;
* ``VOXHELM_STT_FALLBACK_BACKEND`` is tried only for alias requests and only when the first
  backend is *unavailable* (an engine that ran and failed is not retried elsewhere).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from voxhelm import metrics
from voxhelm.audio import Audio
from voxhelm.config import SttConfig
from voxhelm.errors import InvalidInput, ServiceUnavailable
from voxhelm.modelcache import catalogue
from voxhelm.modelcache.layout import stt_models
from voxhelm.stt import lifecycle, multilingual
from voxhelm.stt.base import (
    Backend,
    BackendUnavailable,
    ModelNotInstalled,
    ModelPuller,
    TranscriptionCanceled,
    TranscriptionRequest,
)
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.stt")

ALIASES = frozenset({"auto", "whisper-1", "gpt-4o-mini-transcribe", "gpt-4o-transcribe"})
DIARIZE_ALIAS = "gpt-4o-transcribe-diarize"
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
    # The configured default backend claims its model name first.
    for backend in sorted(configured_backends(config), key=lambda b: b != config.backend):
        models.setdefault(default_model(backend, config), backend)
    if multilingual.is_installed():  # the multilingual extra: served offline by faster-whisper
        models.setdefault(multilingual.MODEL_NAME, "fasterwhisper")
    for name, backend in stt_models(config.model_cache_dir).items():
        models.setdefault(name, backend)
    return models


def accepted_models(config: SttConfig) -> list[str]:
    """Model names a request may use, sorted (for the error message and ``/v1/models``)."""
    names = set(ALIASES) | set(concrete_models(config))
    if config.whisperkit.enabled:
        names.add(WHISPERKIT_ALIAS)
    return sorted(names)


def pullable_backend(model: str) -> str | None:
    """The backend of a speech-to-text model the store can pull, or None."""
    try:
        known = catalogue.resolve(model)
    except InvalidInput:
        return None
    return known.engine if known.kind != catalogue.Kind.PIPER else None


def is_installed(model: str, backend: str, config: SttConfig) -> bool:
    """Whether ``backend`` has ``model`` on disk (engines without local files: always)."""
    if backend == "fasterwhisper":
        from voxhelm.stt import faster_whisper

        requested = model != default_model("fasterwhisper", config)
        return faster_whisper.is_installed(model, config.model_cache_dir, requested=requested)
    if backend == "whispercpp" and "/" not in model:
        return (config.model_cache_dir / model).is_file()
    return True


def auto_pullable(model: str, config: SttConfig) -> bool:
    """Whether a request may make the server pull ``model``: a configured model, or one of
    the catalogue's known names (a bounded list, so requests cannot fill the disk)."""
    return config.model_auto_pull and (model in catalogue.KNOWN or model in configured(config))


def configured_backends(config: SttConfig) -> list[str]:
    """The backends the configuration sets a model for (WhisperKit only when enabled)."""
    backends = ["fasterwhisper", "whispercpp", "mlx"]
    return [*backends, "whisperkit"] if config.whisperkit.enabled else backends


def configured(config: SttConfig) -> set[str]:
    """The concrete models the configuration names (an operator's choice)."""
    return {default_model(backend, config) for backend in configured_backends(config)}


def not_installed(model: str, config: SttConfig | None = None) -> InvalidInput:
    pulls = ""
    if config is not None and config.model_auto_pull:
        pulls = (
            " Requests pull only the catalogue's models "
            f"({', '.join(catalogue.short_names())}, and whisper.cpp files such as "
            "ggml-small.bin)."
        )
    return InvalidInput(
        f"The model '{model}' is not installed on this server.{pulls} An operator can "
        f"install it with: {catalogue.pull_command(model)}",
        param="model",
        code="model_not_installed",
    )


def validate_model(model: str, config: SttConfig, *, diarizing: bool = False) -> str:
    """Return ``model`` if a request may use it, else raise InvalidInput (param ``model``):
    ``model_not_installed`` for a model that could be pulled, else ``model_not_found``.
    ``diarizing``: the request can label speakers, so :data:`DIARIZE_ALIAS` is accepted."""
    if model in ALIASES or (model == WHISPERKIT_ALIAS and config.whisperkit.enabled):
        return model
    if model == DIARIZE_ALIAS and diarizing:
        return model
    backend = concrete_models(config).get(model) or pullable_backend(model)
    if backend is not None and (
        auto_pullable(model, config) or is_installed(model, backend, config)
    ):
        return model
    if backend is not None and pullable_backend(model) is not None:
        raise not_installed(model, config)
    if model in accepted_models(config):
        return model  # a configured engine that cannot run answers 503 when asked
    raise InvalidInput(
        f"Unsupported model '{model}'. Accepted values: {', '.join(accepted_models(config))}.",
        param="model",
        code="model_not_found",
    )


def resolve(model: str, config: SttConfig) -> list[Invocation]:
    """The backends to try for a request model, in order."""
    if model in ALIASES or model == DIARIZE_ALIAS:
        primary = Invocation(config.backend, default_model(config.backend, config))
        fallback = config.fallback_backend
        if fallback and fallback != config.backend:
            return [primary, Invocation(fallback, default_model(fallback, config))]
        return [primary]
    if model == WHISPERKIT_ALIAS:
        return [Invocation("whisperkit", config.whisperkit.model)]
    backend = concrete_models(config).get(model) or pullable_backend(model) or config.backend
    return [Invocation(backend, model)]


BackendFactory = Callable[[str, str, SttConfig, ModelPuller | None], Backend]
"""Builds the backend ``name`` for ``model``; the puller is given when auto-pull is on."""


def _build_backend(name: str, model: str, config: SttConfig, pull: ModelPuller | None) -> Backend:
    if name == "fasterwhisper":
        from voxhelm.stt.faster_whisper import FasterWhisperBackend, public_model_name

        fw = config.fasterwhisper
        if model == public_model_name(fw.model):  # the configured model: may be a folder
            return FasterWhisperBackend(fw, config.model_cache_dir, pull=pull)
        return FasterWhisperBackend(
            replace(fw, model=model), config.model_cache_dir, pull=pull, requested=True
        )
    if name == "mlx":
        from voxhelm.stt.mlx import MlxBackend

        return MlxBackend(replace(config.mlx, model=model))
    if name == "whisperkit":
        from voxhelm.stt.whisperkit import WhisperKitBackend

        return WhisperKitBackend(
            replace(config.whisperkit, model=model), api_key=config.whisperkit.api_key
        )
    if name == "whispercpp":
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


def with_hotwords(
    request: TranscriptionRequest, backend: Backend, config: SttConfig
) -> TranscriptionRequest:
    """``request`` with ``VOXHELM_STT_HOTWORDS`` added, in the form ``backend`` takes.

    Engines without a hotwords option get them appended to the prompt as a vocabulary
    line, which every Whisper engine reads as preceding text (whisper.cpp when its build has
    --prompt). A bare list of names in a prompt can hijack the transcript (tiny.en then
    writes one of the names for another), the ``Vocabulary:`` label keeps it a list.
    """
    words = tuple(dict.fromkeys((*config.hotwords, *request.hotwords)))
    if not words:
        return request
    if backend.supports_hotwords:
        return replace(request, hotwords=words)
    vocabulary = f"Vocabulary: {', '.join(words)}."
    prompt = f"{request.prompt} {vocabulary}" if request.prompt else vocabulary
    return replace(request, prompt=prompt, hotwords=())


@dataclass
class Usage:
    """How one engine is used in this process: calls running now and when the last ended."""

    busy: int = 0
    last_used: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Resident:
    """A backend whose model is in memory, for health and metrics."""

    backend: str
    model: str
    idle_seconds: float  # 0 while a call runs
    busy: int
    pinned: bool


class Engines:
    """Backends built once per (backend, model) and shared by every request.

    Each backend loads its model on first use and keeps it; :meth:`unload_idle` drops the
    models nobody used for a while (see :mod:`voxhelm.stt.lifecycle`), except pinned ones.
    """

    def __init__(self, factory: BackendFactory = _build_backend) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._backends: dict[tuple[str, str], Backend] = {}
        self._usage: dict[tuple[str, str], Usage] = {}
        self._pinned: set[tuple[str, str]] = set()
        self._config: SttConfig | None = None  # the latest seen, for the idle sweeper
        self._puller: ModelPuller | None = None

    def pull_with(self, puller: ModelPuller) -> None:
        """Install models that requests name but that are not installed with ``puller``,
        when ``VOXHELM_MODEL_AUTO_PULL`` is on. The model store hands its pull over at the
        start of a process: the engines sit below the store and never import it."""
        self._puller = puller

    def _pull(self, name: str, cache_dir: Path) -> Path:
        # Looked up at each pull, so that engines built before the hand-over (the start-up
        # checks build the default one) pull too.
        if self._puller is None:
            raise ModelNotInstalled(name)
        return self._puller(name, cache_dir)

    def get(self, invocation: Invocation, config: SttConfig) -> Backend:
        key = (invocation.backend, invocation.model)
        # Checked here too, not only when a request is validated: an engine for a name a
        # client chose never gets the pull unless that name may be pulled.
        pull = self._pull if auto_pullable(invocation.model, config) else None
        with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                backend = self._factory(invocation.backend, invocation.model, config, pull)
                self._backends[key] = backend
                self._usage[key] = Usage()
            return backend

    def current_config(self) -> SttConfig | None:
        """The STT configuration of the latest transcription (None before the first)."""
        return self._config

    def pin(self, invocation: Invocation) -> None:
        """Never unload ``invocation``'s model for idleness (an interactive default)."""
        with self._lock:
            self._pinned.add((invocation.backend, invocation.model))

    def transcribe(
        self,
        audio: Audio,
        model: str,
        request: TranscriptionRequest,
        config: SttConfig,
        *,
        windows: Sequence[tuple[int, int]] = (),
    ) -> Transcript:
        """Run the request on the first available backend for ``model``: on the windows
        ``windows`` of ``audio`` when given (:meth:`Backend.transcribe_windows`).

        ``request.on_segment`` sees every segment: as the engine decodes it for streaming
        engines, all at the end for the others.
        """
        self._config = config
        if config.model_idle_seconds > 0:
            lifecycle.start_idle_sweeper(self)
        reasons: list[str] = []
        for invocation in resolve(model, config):
            backend = self.get(invocation, config)
            try:
                with self._in_use((invocation.backend, invocation.model)):
                    started = time.monotonic()
                    engine_request = with_hotwords(request, backend, config)
                    transcript = (
                        backend.transcribe_windows(audio, windows, engine_request)
                        if windows
                        else backend.transcribe(audio, engine_request)
                    )
                    seconds = time.monotonic() - started
            except BackendUnavailable as exc:
                logger.warning("stt backend %s unavailable: %s", invocation.backend, exc)
                reasons.append(f"{invocation.backend}: {exc}")
                continue
            metrics.observe_transcription(backend.name, backend.model, audio.duration, seconds)
            if request.on_segment is not None and not backend.supports_streaming:
                for segment in transcript.segments:
                    if not request.on_segment(segment):
                        raise TranscriptionCanceled
            return transcript
        logger.error("no STT backend available for model %s: %s", model, "; ".join(reasons))
        raise ServiceUnavailable(
            "No configured STT backend is available.", code="backend_unavailable"
        )

    def windowing(self, model: str, config: SttConfig) -> tuple[int, str | None]:
        """How the engine for ``model`` takes windows: how many in one call
        (:meth:`Backend.window_batch`), and the one language it speaks, if any
        (:meth:`Backend.only_language`). ``(1, None)`` when it cannot load: the
        transcription itself then says why."""
        invocation = resolve(model, config)[0]
        backend = self.get(invocation, config)
        try:
            with self._in_use((invocation.backend, invocation.model)):
                return backend.window_batch(), backend.only_language()
        except BackendUnavailable:
            return 1, None

    def refuse_unsupported(
        self, model: str, request: TranscriptionRequest, config: SttConfig
    ) -> None:
        """Raise InvalidInput when the backend that would serve ``model`` refuses
        ``request`` (an English-only model asked for German), before any audio is decoded.

        Runs in a worker thread (it may load the model). A backend that cannot run is
        passed over as :meth:`transcribe` passes it over; when none can, :meth:`transcribe`
        reports it.
        """
        for invocation in resolve(model, config):
            try:
                # In use while it loads: the idle unloader must not drop it before the decode.
                with self._in_use((invocation.backend, invocation.model)):
                    self.get(invocation, config).refuse_unsupported(request)
            except BackendUnavailable:
                continue
            return

    @contextlib.contextmanager
    def _in_use(self, key: tuple[str, str]) -> Iterator[None]:
        with self._lock:
            usage = self._usage.setdefault(key, Usage())
            usage.busy += 1
        try:
            yield
        finally:
            with self._lock:
                usage.busy -= 1
                usage.last_used = time.monotonic()

    def resident(self, config: SttConfig | None = None) -> list[Resident]:
        """The backends whose model is loaded in this process, sorted by name."""
        now = time.monotonic()
        pinned = self.pinned_keys(config)
        with self._lock:
            items = [(key, self._backends[key], self._usage[key]) for key in self._backends]
        return sorted(
            (
                Resident(
                    backend=key[0],
                    model=backend.model,
                    idle_seconds=0.0 if usage.busy else max(now - usage.last_used, 0.0),
                    busy=usage.busy,
                    pinned=key in pinned,
                )
                for key, backend, usage in items
                if backend.loaded
            ),
            key=lambda r: (r.backend, r.model),
        )

    def pinned_keys(self, config: SttConfig | None = None) -> set[tuple[str, str]]:
        """Models kept loaded however long they are idle: the alias default and pins."""
        with self._lock:
            pinned = set(self._pinned)
            config = config or self._config
        if config is not None:
            pinned |= {(i.backend, i.model) for i in resolve("auto", config)}
        return pinned

    def unload_idle(self, idle_seconds: float) -> list[Backend]:
        """Unload every unpinned model unused for ``idle_seconds``; returns those unloaded.

        The check and the unload happen under the registry lock, so a call cannot start on
        a model between the two (it would load it again, which is correct but wasteful).
        """
        pinned = self.pinned_keys()
        now = time.monotonic()
        unloaded: list[Backend] = []
        with self._lock:
            for key, backend in self._backends.items():
                usage = self._usage[key]
                if key in pinned or usage.busy or now - usage.last_used < idle_seconds:
                    continue
                if backend.unload():
                    metrics.model_unloads.labels(backend.name, backend.model, "idle").inc()
                    unloaded.append(backend)
        return unloaded

    def reset(self) -> None:
        with self._lock:
            self._backends.clear()
            self._usage.clear()
            self._pinned.clear()


ENGINES = Engines()


def warm_up_default(config: SttConfig) -> threading.Thread:
    """Load the default model on a daemon thread, so that the first request or job does
    not wait for it (``voxhelm serve``, ``voxhelm worker``, ``voxhelm-remote-worker``).

    An engine that cannot load is not reported here: health, the system check and the
    first request that needs it do that.
    """

    def load() -> None:
        started = time.monotonic()
        invocation = resolve("auto", config)[0]
        try:
            ENGINES.get(invocation, config).load()
        except BackendUnavailable:
            return
        logger.info(
            "default STT model %s (%s) loaded in %.1f s",
            invocation.model,
            invocation.backend,
            time.monotonic() - started,
        )

    thread = threading.Thread(target=load, name="voxhelm-warm-up", daemon=True)
    thread.start()
    return thread

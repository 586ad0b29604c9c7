"""The STT engine interface: ``Backend`` with one abstract method, and its errors."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from voxhelm.audio import Audio
from voxhelm.modelcache.catalogue import pull_command
from voxhelm.transcript import Segment, Transcript

ModelPuller = Callable[[str, Path], Path]
"""Installs the model ``name`` into the model cache ``cache_dir`` and returns its path; raises
BackendUnavailable when it cannot. Engines never download by themselves: with
``VOXHELM_MODEL_AUTO_PULL`` on, the model store hands one to the engine registry
(:meth:`voxhelm.stt.registry.Engines.pull_with`), which gives it to the engines it builds."""


class BackendUnavailable(Exception):
    """The engine cannot run at all (missing binary, model or extra); fallback may act.

    The message may name paths: it is logged, never sent to a client.
    """


class ModelNotInstalled(BackendUnavailable):
    """The model is one Voxhelm can pull, but it is not installed (and auto-pull is off)."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' is not installed on this server. "
            f"Install it with: {pull_command(model)}"
        )
        self.model = model


class TranscriptionFailed(Exception):
    """The engine ran and failed. No fallback; the details are logged, never sent to a client."""


class TranscriptionCanceled(Exception):
    """The caller's ``on_segment`` hook asked the engine to stop."""


class EngineState(enum.StrEnum):
    NOT_LOADED = "not_loaded"
    LOADING = "loading"
    READY = "ready"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class TranscriptionRequest:
    """What the caller wants, independent of engine and wire format."""

    language: str | None = None  # ISO 639-1; None = detect
    prompt: str | None = None
    # Words and names to favour (faster-whisper's ``hotwords``); engines without such an
    # option get them appended to the prompt (see voxhelm.stt.registry).
    hotwords: tuple[str, ...] = ()
    temperature: float | None = None  # None = the engine's fallback schedule
    word_timestamps: bool = False
    task: str = "transcribe"  # or "translate"
    # Called with each segment as the engine finishes it (times relative to the audio
    # passed in); returning False stops the engine with TranscriptionCanceled. Engines that
    # only produce a whole transcript call it for each segment at the end.
    on_segment: Callable[[Segment], bool] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class EngineStatus:
    backend: str
    model: str
    state: EngineState
    reason: str | None = None


class Backend(ABC):
    """One STT engine serving one model.

    Subclasses set ``name`` (the config name, e.g. ``fasterwhisper``) and the capability
    flags, and implement :meth:`transcribe`. ``transcribe`` runs in a worker thread, never on
    an event loop; it must be safe to call from several threads (engines that are not
    serialize internally).
    """

    name: ClassVar[str]
    supports_word_timestamps: ClassVar[bool] = False
    supports_streaming: ClassVar[bool] = False
    supports_translation: ClassVar[bool] = False
    supports_hotwords: ClassVar[bool] = False

    def __init__(self, model: str) -> None:
        self.model = model  # the public model name, safe to show to clients

    @abstractmethod
    def transcribe(self, audio: Audio, request: TranscriptionRequest) -> Transcript:
        """Transcribe 16 kHz mono audio. Raises BackendUnavailable or TranscriptionFailed."""

    def window_batch(self) -> int:
        """How many windows one :meth:`transcribe_windows` call decodes at once (1: it
        decodes them one by one, and a caller gains nothing from handing it several)."""
        return 1

    def only_language(self) -> str | None:
        """The one language the model speaks (``"en"`` for an English-only Whisper model),
        so that no audio is needed to know it; None for multilingual models. May load the
        model."""
        return None

    def transcribe_windows(
        self, audio: Audio, bounds: Sequence[tuple[int, int]], request: TranscriptionRequest
    ) -> Transcript:
        """Transcribe the windows ``bounds`` of ``audio`` (``(start, end)`` sample offsets,
        in order, each at most 30 s; what lies between two is not transcribed) as one
        transcript timed from the start of ``audio``. Each window is decoded on its own,
        with ``request`` (its prompt too).

        Engines that decode several windows in one batched call override it (and
        :meth:`window_batch`); this default decodes them one after another.
        """
        rate = audio.sample_rate
        pieces = [
            self.transcribe(Audio(audio.samples[start:end], rate), request).shifted(start / rate)
            for start, end in bounds
        ]
        return Transcript.joined(pieces, pieces[0].language, audio.duration)

    def check(self) -> list[str]:
        """Problems that would make this engine unavailable, each with a hint; [] if none."""
        return []

    def refuse_unsupported(self, request: TranscriptionRequest) -> None:
        """Raise InvalidInput when this model cannot serve ``request`` (a language it does
        not speak, a task it cannot do), so a caller can refuse before any audio is decoded;
        BackendUnavailable when the engine cannot run at all.

        May load the model (call it from a worker thread). Engines that cannot tell only
        check that they can run; :meth:`transcribe` refuses as well.
        """
        problems = self.check()
        if problems:
            raise BackendUnavailable(problems[0])

    def load(self) -> None:  # noqa: B027 - optional hook, engines without a model skip it
        """Load the model now (warm-up). Engines without a resident model do nothing."""

    @property
    def loaded(self) -> bool:
        """Whether a model of this engine is resident in this process's memory."""
        return False

    def unload(self) -> bool:
        """Drop the resident model so its memory can be returned; True if one was dropped.

        A transcription running meanwhile keeps its own reference and finishes; the next
        one loads the model again.
        """
        return False

    def status(self) -> EngineStatus:
        problems = self.check()
        if problems:
            return EngineStatus(self.name, self.model, EngineState.UNAVAILABLE, problems[0])
        return EngineStatus(self.name, self.model, EngineState.READY)

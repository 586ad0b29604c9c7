"""The TTS engine interface: ``TtsEngine`` with one abstract method, its data and its errors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np


class VoiceUnavailable(Exception):
    """A voice (or the engine itself) cannot be loaded: missing package, file or model.

    The message may name paths: it is logged, never sent to a client.
    """


@dataclass(frozen=True)
class Voice:
    """One installed voice. ``name`` is what a request selects it by."""

    name: str  # e.g. "en_US-joe-medium"
    language: str  # the voice's language as its config says, e.g. "en_US"
    sample_rate: int
    speakers: tuple[str, ...] = ()  # named speakers of a multi-speaker voice
    source: str = "directory"  # "bundled" (a Python package) or "directory"
    quality: str | None = None
    # Where the model lives: for loading only, never shown to a client.
    model_path: Path = field(default=Path(), compare=False, repr=False)
    config_path: Path = field(default=Path(), compare=False, repr=False)

    @property
    def family(self) -> str:
        """The language without its region, lowercased: ``en_US`` -> ``en``."""
        return self.language.replace("-", "_").split("_")[0].lower()

    @property
    def languages(self) -> tuple[str, ...]:
        """Language keys the voice answers to: its family and its full code."""
        return tuple(dict.fromkeys((self.family, self.language)))


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak, independent of engine."""

    speed: float = 1.0  # 1.0 = the voice's natural pace; 2.0 = twice as fast
    speaker: str | None = None  # a named speaker of a multi-speaker voice


@dataclass(frozen=True)
class SpeechChunk:
    """A piece of synthesized speech (one sentence, for engines that stream)."""

    samples: np.ndarray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def pcm16(self) -> bytes:
        """The samples as 16-bit signed little-endian PCM."""
        scaled = np.clip(self.samples, -1.0, 1.0) * 32767.0
        return bytes(scaled.round().astype("<i2").tobytes())


class TtsEngine(ABC):
    """One speech synthesis engine and the voices it offers.

    Subclasses set ``name`` and the capability flags and implement :meth:`synthesize`. It
    runs in a worker thread, never on an event loop, and must be safe to call from several
    threads.
    """

    name: ClassVar[str]
    supports_streaming: ClassVar[bool] = False  # yields audio sentence by sentence
    supports_speed: ClassVar[bool] = False
    supports_speakers: ClassVar[bool] = False

    @abstractmethod
    def synthesize(
        self, text: str, voice: Voice, options: SynthesisOptions
    ) -> Iterator[SpeechChunk]:
        """Speak ``text`` with ``voice``, lazily: each ``next()`` does the work of one chunk.

        Raises :class:`VoiceUnavailable` when the voice cannot be loaded.
        """

    def voices(self) -> list[Voice]:
        """The voices this engine can speak with, the default one first."""
        return []

    def load(self, voice: Voice) -> None:  # noqa: B027 - optional hook
        """Load ``voice`` now (warm-up). Raises :class:`VoiceUnavailable`."""

    def check(self) -> list[str]:
        """Problems that keep this engine from speaking, each with a hint; [] if none."""
        return []

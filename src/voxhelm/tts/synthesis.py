"""Synthesis for every surface: input checks, voice choice, lane admission sentence by sentence.

:func:`stream` is what a streaming caller (HTTP, Wyoming) iterates; :func:`synthesize` is the
whole thing at once (batch jobs). Both run the engine in the calling thread, so call them
from a worker thread, never on an event loop.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np

from voxhelm import capacity
from voxhelm.audio import Audio
from voxhelm.capacity import Admission
from voxhelm.config import Config, LanesConfig
from voxhelm.errors import InvalidInput, ServiceUnavailable
from voxhelm.tts import registry
from voxhelm.tts.base import SpeechChunk, SynthesisOptions, Voice, VoiceUnavailable

logger = logging.getLogger("voxhelm.tts")

MIN_SPEED = 0.25
MAX_SPEED = 4.0


def validate_text(text: object, max_chars: int, *, param: str = "input") -> str:
    """The stripped text, or InvalidInput naming ``param`` when blank or over ``max_chars``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(
            f"The '{param}' field is required and must be a non-empty string.",
            param=param,
            code="empty_input",
        )
    stripped = text.strip()
    if len(stripped) > max_chars:
        raise InvalidInput(
            f"Input text exceeded the configured {max_chars} character limit.",
            param=param,
            code="input_too_long",
        )
    return stripped


def validate_speed(speed: object, *, param: str = "speed") -> float:
    """``speed`` as a float in [0.25, 4.0] (None = 1.0); a boolean is refused, not 1.0."""
    if speed is None:
        return 1.0
    value = float(speed) if isinstance(speed, int | float) and not isinstance(speed, bool) else None
    if value is None or not math.isfinite(value) or not MIN_SPEED <= value <= MAX_SPEED:
        raise InvalidInput(
            f"The '{param}' field must be between {MIN_SPEED} and {MAX_SPEED}.",
            param=param,
            code="invalid_speed",
        )
    return value


@dataclass(frozen=True)
class Speech:
    """Synthesized speech with what produced it."""

    audio: Audio  # mono float32 at the voice's sample rate
    voice: Voice
    language: str  # the requested language, else the voice's language family


class SpeechStream(Iterator[SpeechChunk]):
    """The speech for one text, one chunk (a sentence, for Piper) per ``next()``.

    Each ``next()`` holds a lane slot only while it computes its chunk, so interactive
    work waits for at most one sentence of a long text. ``voice``, ``sample_rate`` and
    ``language`` are known before the first chunk. Steps may run on different threads,
    one at a time; :meth:`close` may be called from any thread, even during a step.
    """

    def __init__(
        self,
        chunks: Iterator[SpeechChunk],
        voice: Voice,
        language: str,
        *,
        lanes_config: LanesConfig,
        admission: Admission,
    ) -> None:
        self.voice = voice
        self.language = language
        self._chunks = chunks
        self._lanes = lanes_config
        self._admission = admission
        self._step = threading.Lock()
        self._closed = False

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    def __next__(self) -> SpeechChunk:
        with self._step:
            if self._closed:
                raise StopIteration
            try:
                with capacity.slot(self._lanes, self._admission):
                    chunk = next(self._chunks, None)
            except VoiceUnavailable as exc:
                logger.error("tts: %s", exc)
                raise ServiceUnavailable(
                    "Text-to-speech is not available on this server; see the server log.",
                    code="tts_unavailable",
                ) from None
            if chunk is None:
                self._finish()
                raise StopIteration
            if self._closed:  # closed while this step ran
                self._finish()
            return chunk

    def close(self) -> None:
        """Stop: no more chunks are computed (a step already running completes)."""
        self._closed = True
        if self._step.acquire(blocking=False):
            try:
                self._finish()
            finally:
                self._step.release()

    def _finish(self) -> None:
        self._closed = True
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def stream(
    text: str,
    *,
    config: Config,
    voice: str | None = None,
    speed: float = 1.0,
    language: str | None = None,
    speaker: str | None = None,
    admission: Admission = capacity.SYNC,
) -> SpeechStream:
    """Prepare the speech for ``text``; nothing is synthesized until the first ``next()``.

    ``voice`` and ``language`` choose the voice (see :mod:`voxhelm.tts.voices`); ``speed``
    is 0.25-4.0. Raises :class:`InvalidInput` (``param`` ``input``, ``speed`` or ``voice``)
    at once; ``next()`` may raise :class:`~voxhelm.errors.Busy` (no lane slot within the
    ``admission``'s wait, :mod:`voxhelm.capacity`) or ServiceUnavailable.
    """
    text = validate_text(text, config.limits.tts_max_input_chars)
    options = SynthesisOptions(speed=validate_speed(speed), speaker=speaker)
    chosen = registry.catalog(config.tts).resolve(voice, language)
    chunks = registry.engine(config.tts).synthesize(text, chosen, options)
    return SpeechStream(
        chunks, chosen, language or chosen.family, lanes_config=config.lanes, admission=admission
    )


class SpeechOptions(TypedDict, total=False):
    """The keyword arguments of :func:`stream` that :func:`synthesize` passes on."""

    voice: str | None
    speed: float
    language: str | None
    speaker: str | None
    admission: Admission


def synthesize(text: str, *, config: Config, **options: Unpack[SpeechOptions]) -> Speech:
    """Speak ``text`` completely: the arguments and errors of :func:`stream`.

    Text with nothing to pronounce (only punctuation) is InvalidInput (``param=input``).
    """
    speech = stream(text, config=config, **options)
    with contextlib.closing(speech):
        pieces = [chunk.samples for chunk in speech]
    if not pieces:
        raise nothing_to_speak()
    samples = np.concatenate(pieces).astype(np.float32, copy=False)
    return Speech(Audio(samples, speech.sample_rate), speech.voice, speech.language)


def nothing_to_speak(param: str = "input") -> InvalidInput:
    """The error for text that holds no pronounceable word."""
    return InvalidInput(
        "The input contains nothing to speak.", param=param, code="nothing_to_speak"
    )

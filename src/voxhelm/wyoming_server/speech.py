"""Wyoming text-to-speech: ``synthesize``, and the streaming ``synthesize-start/-chunk/-stop``.

``synthesize`` answers ``audio-start``, ``audio-chunk`` events of
``VOXHELM_WYOMING_SAMPLES_PER_CHUNK`` frames (16-bit mono at the voice's rate) and
``audio-stop``; the connection stays open, as in the reference.

Streaming (Home Assistant reading out a language model's answer as it is written):
``synthesize-start`` picks the voice; the text of each ``synthesize-chunk`` is collected
and every sentence it completes is spoken at once; ``synthesize-stop`` speaks the rest and
answers ``audio-stop`` and ``synthesize-stopped``. One ``audio-start`` opens the audio of
the whole stream. Home Assistant also sends the whole text as a plain ``synthesize``
inside the stream, for servers that cannot stream; it is ignored there.

Every sentence is synthesized in a worker thread under an interactive lane admission.
Limits: the text of one request (streamed or not) is at most
``VOXHELM_TTS_MAX_INPUT_CHARS``; an unknown voice name falls back to the default voice (as
an unknown STT model does), so Home Assistant still speaks after a voice was removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.tts import SynthesizeStopped

from voxhelm import capacity, tts
from voxhelm.config import Config
from voxhelm.errors import InvalidInput, VoxhelmError
from voxhelm.tts.sentences import SentenceBuffer
from voxhelm.wyoming_server.protocol import ProtocolError, optional_string

logger = logging.getLogger("voxhelm.wyoming")

SYNTHESIZE = "synthesize"
START, CHUNK, STOP = "synthesize-start", "synthesize-chunk", "synthesize-stop"
EVENTS = frozenset({SYNTHESIZE, START, CHUNK, STOP})
WIDTH = 2  # bytes per sample: Piper speaks 16-bit mono
CHANNELS = 1


@dataclass(frozen=True)
class VoiceChoice:
    """The ``voice`` object of a synthesize event."""

    name: str | None = None
    language: str | None = None
    speaker: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> VoiceChoice:
        voice = data.get("voice")
        if voice is None:
            return cls()
        if not isinstance(voice, dict):
            raise ProtocolError("'voice' must be an object.", "bad_request")
        keys = ("name", "language", "speaker")
        return cls(*(optional_string(voice, key, f"voice.{key}") for key in keys))


class Chunker:
    """Cuts PCM into pieces of a fixed size; a short rest waits for the next sentence."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rest = b""

    def add(self, data: bytes) -> list[bytes]:
        data = self._rest + data
        cut = len(data) - len(data) % self.size
        self._rest = data[cut:]
        return [data[i : i + self.size] for i in range(0, cut, self.size)]

    def flush(self) -> bytes:
        rest, self._rest = self._rest, b""
        return rest


class SpeechSession:
    """The TTS state of one connection: whether a stream is open, and its text and voice."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.samples_per_chunk = config.wyoming.samples_per_chunk
        self.max_chars = config.limits.tts_max_input_chars
        self.streaming = False
        self._voice = VoiceChoice()
        self._buffer = SentenceBuffer()
        self._received = 0
        self._audio_started = False
        self._failed = False
        self._rate = 0
        self._chunker = Chunker(self.samples_per_chunk * WIDTH * CHANNELS)

    def handle(self, event: Event) -> AsyncIterator[Event] | None:
        """The events answering ``event`` (a TTS event), produced as synthesis goes on."""
        kind = event.type
        if kind == SYNTHESIZE:
            if self.streaming:
                return None  # the compatibility copy of a stream's text
            return self._speak_request(_text(event.data), VoiceChoice.from_data(event.data))
        if kind == START:
            self._open(VoiceChoice.from_data(event.data))
            return None
        if not self.streaming:
            logger.info("wyoming: %s outside a synthesis stream; ignored", kind)
            return None
        if kind == CHUNK:
            return self._speak_chunk(_text(event.data))
        return self._close_stream()

    # -- one request ---------------------------------------------------------------------
    async def _speak_request(self, text: str, choice: VoiceChoice) -> AsyncIterator[Event]:
        # One sentence's worth of a stream, as far as the audio goes.
        self._voice, self._audio_started = choice, False
        self._chunker = Chunker(self._chunker.size)
        async for event in self._speak_sentence(text):
            yield event
        async for event in self._end_audio():
            yield event

    # -- a stream ------------------------------------------------------------------------
    def _open(self, choice: VoiceChoice) -> None:
        self.streaming = True
        self._voice = choice
        self._buffer = SentenceBuffer()
        self._received = 0
        self._audio_started = False
        self._failed = False
        self._chunker = Chunker(self._chunker.size)

    async def _speak_chunk(self, text: str) -> AsyncIterator[Event]:
        if self._failed:
            return
        self._received += len(text)
        if self._received > self.max_chars:
            self._failed = True
            yield Error(
                f"Input text exceeded the configured {self.max_chars} character limit.",
                "input_too_long",
            ).event()
            return
        for sentence in self._buffer.add(text):
            async for event in self._speak_sentence(sentence):
                yield event

    async def _close_stream(self) -> AsyncIterator[Event]:
        rest = self._buffer.finish()
        if rest and not self._failed:
            async for event in self._speak_sentence(rest):
                yield event
        async for event in self._end_audio():
            yield event
        self.streaming = False
        yield SynthesizeStopped().event()

    async def _speak_sentence(self, sentence: str) -> AsyncIterator[Event]:
        try:
            speech = self._stream(sentence, self._voice)
        except VoxhelmError as exc:
            yield Error(exc.message, exc.code).event()
            return
        # Every sentence of a stream resolves to the same voice, so one rate holds.
        self._voice = VoiceChoice(speech.voice.name, None, self._voice.speaker)
        if not self._audio_started:
            self._audio_started = True
            yield _audio_start(speech.voice)
        async for event in self._chunks(speech):
            yield event

    # -- synthesis -------------------------------------------------------------------------
    def _stream(self, text: str, choice: VoiceChoice) -> tts.SpeechStream:
        def start(name: str | None) -> tts.SpeechStream:
            return tts.stream(
                text,
                config=self.config,
                voice=name,
                language=choice.language,
                speaker=choice.speaker,
                admission=capacity.VOICE,
            )

        try:
            return start(choice.name)
        except InvalidInput as exc:
            if exc.param != "voice":
                raise
            logger.info("wyoming: unknown voice %r requested; using the default", choice.name)
            return start(None)

    async def _chunks(self, speech: tts.SpeechStream) -> AsyncIterator[Event]:
        """``audio-chunk`` events of ``speech``, one sentence computed at a time."""
        self._rate = speech.sample_rate
        try:
            while (chunk := await asyncio.to_thread(next, speech, None)) is not None:
                for piece in self._chunker.add(chunk.pcm16()):
                    yield AudioChunk(self._rate, WIDTH, CHANNELS, piece).event()
        except VoxhelmError as exc:  # Busy: no slot in time; no voice could load
            yield Error(exc.message, exc.code).event()
        except Exception:
            logger.exception("wyoming synthesis failed")
            yield Error("Synthesis failed.", "synthesis_failed").event()
        finally:
            with contextlib.suppress(Exception):
                speech.close()

    async def _end_audio(self) -> AsyncIterator[Event]:
        """The last short chunk and ``audio-stop``, once audio has started."""
        if self._audio_started:
            rest = self._chunker.flush()
            if rest:
                yield AudioChunk(self._rate, WIDTH, CHANNELS, rest).event()
            yield AudioStop().event()


def _audio_start(voice: tts.Voice) -> Event:
    return AudioStart(rate=voice.sample_rate, width=WIDTH, channels=CHANNELS).event()


def _text(data: dict[str, Any]) -> str:
    text = data.get("text")
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ProtocolError("'text' must be a string.", "bad_request")
    return text

"""One Wyoming connection: ``describe``, ``transcribe`` + audio -> ``transcript``, and TTS.

Event flow (reference §5.4): ``transcribe`` sets the model, language and hints of the next
request; ``audio-start`` fixes the input format and starts a fresh buffer; each
``audio-chunk`` is converted to 16 kHz mono as it arrives; ``audio-stop`` runs the request
and answers ``transcript`` (or ``error``), after which the connection closes. A protocol
error answers ``error`` and closes too; the server goes on.

The model is asked whether it serves the command's language as soon as the command is
known (its ``transcribe`` event, else the first audio): a refused command (an English-only
model asked for German) starts no decode, early or late, and its ``error`` is the answer
to ``audio-stop``, where the client reads it.

The engine runs in a worker thread: first the VAD gate (no speech -> an empty transcript,
Whisper never runs), then an interactive lane admission around the engine call, through
the process-wide ``ENGINES`` registry, so a model already loaded in this process is shared.
Synthesis events go to :mod:`voxhelm.wyoming_server.speech`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from wyoming.asr import Transcript as TranscriptEvent
from wyoming.error import Error
from wyoming.event import Event

from voxhelm import capacity, metrics
from voxhelm.audio import Audio
from voxhelm.config import Config
from voxhelm.errors import InvalidInput, VoxhelmError
from voxhelm.stt import debuglog, vad
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.registry import ENGINES, accepted_models, resolve
from voxhelm.transcript import Transcript
from voxhelm.wyoming_server.early import EarlyDecoder, EarlyResult
from voxhelm.wyoming_server.info import SttSettings, build_info, tts_programs
from voxhelm.wyoming_server.normalize import normalize_transcript
from voxhelm.wyoming_server.pcm import AudioFormatError, AudioTooLong, PcmCollector, PcmFormat
from voxhelm.wyoming_server.protocol import ProtocolError, optional_string
from voxhelm.wyoming_server.speech import EVENTS as SPEECH_EVENTS
from voxhelm.wyoming_server.speech import SpeechSession

logger = logging.getLogger("voxhelm.wyoming")

DEBUG_SOURCE = "wyoming"
MAX_PROMPT_CHARS = 800  # Whisper keeps ~224 prompt tokens; more text is wasted work
MAX_HINTS = 200
MAX_SECONDS_ON_LOOP = 30.0  # shorter audio is put together on the event loop at audio-stop


@dataclass(frozen=True)
class Reply:
    """What to send back for one event, and whether to close the connection afterwards.

    ``stream`` yields more events after ``events``, each sent as soon as it is produced
    (synthesized audio); the server stops it when the peer is gone.
    """

    events: tuple[Event, ...] = ()
    close: bool = False
    stream: AsyncIterator[Event] | None = None


KEEP = Reply()


@dataclass(frozen=True)
class Command:
    """One voice command to transcribe."""

    model: str
    request: TranscriptionRequest
    requested_language: str | None  # as the client sent it (or the default), for the reply


class SttService:
    """What every connection shares: configuration, resolved settings and the info event."""

    def __init__(self, config: Config, settings: SttSettings) -> None:
        self.config = config
        self.settings = settings
        self.info_event = build_info(settings, tts_programs(config)).event()

    def session(self) -> SttSession:
        return SttSession(self)

    def command(self, data: dict[str, Any]) -> Command:
        """The command a ``transcribe`` event asks for (its fields, else the defaults)."""
        name = optional_string(data, "name")
        language = optional_string(data, "language")
        model = self.settings.model
        if name and (name == model or name in accepted_models(self.config.stt)):
            model = name
        elif name:
            logger.info("wyoming: unknown model %r requested; using %s", name, model)
        code = self.settings.language
        if language:
            try:
                code = normalize_language(language)
            except InvalidInput:
                logger.info("wyoming: unknown language %r requested; detecting", language)
                code = None
        prompt = build_prompt(self.settings.prompt, _hints(data))
        return Command(
            model=model,
            request=TranscriptionRequest(language=code, prompt=prompt),
            requested_language=code,
        )

    def refuse_unsupported(self, command: Command) -> None:
        """Raise InvalidInput when the command's model cannot serve its language or task
        (in a worker thread: the first call may load the model)."""
        ENGINES.refuse_unsupported(command.model, command.request, self.config.stt)

    @property
    def early_decoding(self) -> bool:
        return self.config.wyoming.vad and self.config.wyoming.early_decode

    def decode(self, audio: Audio, command: Command) -> Transcript:
        """Run the engine on ``audio`` under interactive admission (in a worker thread)."""
        with capacity.slot(self.config.lanes, capacity.VOICE):
            return ENGINES.transcribe(audio, command.model, command.request, self.config.stt)

    def run(
        self,
        audio: Audio,
        command: Command,
        shape: dict[str, Any],
        early: EarlyResult | None = None,
        *,
        stopped: float,
    ) -> TranscriptEvent:
        """Transcribe one command: VAD gate, engine, normalizer (in a worker thread, unless
        ``early`` is given: a transcript of all the speech in ``audio``, decoded while the
        trailing silence streamed in). ``stopped`` is when ``audio-stop`` came (monotonic):
        the client's wait is counted from there.
        """
        skipped = False
        if early is not None:
            transcript = early.transcript
        elif self.config.wyoming.vad and vad.speech_end(audio) is None:
            skipped = True
            backend = resolve(command.model, self.config.stt)[0].backend
            transcript = Transcript("", command.request.language, audio.duration, (), backend)
            transcript = dataclasses.replace(transcript, model=command.model)
        else:
            transcript = self.decode(audio, command)
        language = transcript.language or command.requested_language
        raw = transcript.text
        text = raw.strip()
        if self.config.wyoming.normalize_transcript:
            text = normalize_transcript(raw, language) or text
        if self.config.stt.debug_logging:
            final = dataclasses.replace(transcript, text=text)
            self._log(command, final, raw, shape, stopped, skipped=skipped, early=early)
        return TranscriptEvent(text=text, language=language)

    @staticmethod
    def _log(
        command: Command,
        transcript: Transcript,
        raw: str,
        shape: dict[str, Any],
        stopped: float,
        *,
        skipped: bool,
        early: EarlyResult | None,
    ) -> None:
        # duration_ms is the client's wait after audio-stop, the figure a voice command's
        # latency is made of; an early decode began before it (and may still have run then).
        fields = debuglog.record(
            source=DEBUG_SOURCE,
            audio=shape,
            requested_model=command.model,
            request=command.request,
            transcript=transcript,
            seconds=time.monotonic() - stopped,
        )
        if skipped:
            fields["vad"] = "no_speech"  # the model did not run
        if early is not None:
            fields["early_decode"] = True
            fields["early_decode_ms"] = round(early.seconds * 1000)
            # The engine's speed, not the wait's: the wait may be a fraction of the decode.
            fields["realtime_factor"] = (
                round(early.covered / early.seconds, 2) if early.seconds > 0 else None
            )
        if raw.strip() and raw.strip() != transcript.text:
            fields["transcript_raw"] = debuglog.preview(raw, debuglog.TRANSCRIPT_CHARS)
        debuglog.logger.warning("%s", debuglog.format_line(fields))


@dataclass
class SttSession:
    """The state of one connection: the pending command and the audio collected so far."""

    service: SttService
    command: Command | None = None
    checked: bool = False  # the command's model was asked whether it serves the command
    refusal: VoxhelmError | None = None  # what it answered, when it refused
    pcm: PcmCollector = field(init=False)
    early: EarlyDecoder | None = None
    speech: SpeechSession = field(init=False)

    def __post_init__(self) -> None:
        self.pcm = PcmCollector(self.service.config.wyoming.max_audio_seconds)
        self.speech = SpeechSession(self.service.config)

    async def handle_event(self, event: Event) -> Reply:
        """React to one event; raises :class:`ProtocolError` for a malformed one."""
        kind = event.type
        if kind == "describe":
            return Reply((self.service.info_event,))
        if kind == "ping":
            return Reply((Event("pong", {"text": event.data.get("text")}),))
        if kind == "transcribe":
            self._reset()
            self.command = self.service.command(event.data)
            await self._admit()
            return KEEP
        if kind == "audio-start":
            self.pcm.start(_format(event.data))
            self.early = None
            return KEEP
        if kind == "audio-chunk":
            await self._add_chunk(event)
            return KEEP
        if kind == "audio-stop":
            return await self._finish()
        if kind in SPEECH_EVENTS:
            events = self.speech.handle(event)
            return KEEP if events is None else Reply(stream=events)
        return KEEP  # other events (wake word, intents, ...) are not for us

    async def _admit(self) -> Command:
        """The command in force (the defaults without a ``transcribe`` event), its model
        asked once whether it serves it; a refusal is kept for ``audio-stop``."""
        if self.command is None:
            self.command = self.service.command({})
        if not self.checked:
            self.checked = True
            try:
                await asyncio.to_thread(self.service.refuse_unsupported, self.command)
            except VoxhelmError as exc:
                self.refusal = exc
        return self.command

    async def _add_chunk(self, event: Event) -> None:
        try:
            converted = self.pcm.add(event.payload or b"", _format(event.data))
        except AudioTooLong as exc:
            raise ProtocolError(str(exc), "audio_too_long") from None
        except AudioFormatError as exc:
            raise ProtocolError(str(exc), "bad_audio_format") from None
        if self.service.early_decoding:
            command = await self._admit()
            if self.refusal is not None:
                return
            if self.early is None:
                self.early = EarlyDecoder(lambda audio: self.service.decode(audio, command))
            self.early.feed(converted, self.pcm.snapshot)

    def _reset(self) -> None:
        """Forget the command and its audio: the next one starts from the defaults."""
        self.command = None
        self.checked = False
        self.refusal = None
        self.early = None
        self.pcm.start(None)

    async def _finish(self) -> Reply:
        if self.pcm.input_bytes == 0:
            return Reply((Error("No audio payload received.", "empty_audio").event(),), True)
        started = time.monotonic()
        outcome = "error"
        try:
            command = await self._admit()
            if self.refusal is not None:
                raise self.refusal
            if self.pcm.input_seconds <= MAX_SECONDS_ON_LOOP:
                audio = self.pcm.finish()  # a millisecond: no thread hop on the answer's path
            else:
                audio = await asyncio.to_thread(self.pcm.finish)
            shape = self.pcm.shape(audio)
            early = await self.early.settle(audio) if self.early is not None else None
            if early is not None:
                reply = self.service.run(audio, command, shape, early, stopped=started)
            else:
                run = functools.partial(self.service.run, stopped=started)
                reply = await asyncio.to_thread(run, audio, command, shape)
        except VoxhelmError as exc:
            # A refused language, busy (no slot in time), an engine that is unavailable:
            # the client's doing or the server's state, not a fault; the message is safe.
            logger.info("wyoming: answered an error: %s (%s)", exc.message, exc.code)
            return Reply((Error(exc.message, exc.code).event(),), True)
        except Exception:
            logger.exception("wyoming transcription failed")
            return Reply((Error("Transcription failed.", "transcription_failed").event(),), True)
        else:
            outcome = "transcript"
        finally:
            metrics.wyoming_latency.labels(outcome).observe(time.monotonic() - started)
            self._reset()
        return Reply((reply.event(),), True)


def _format(data: dict[str, Any]) -> PcmFormat:
    try:
        return PcmFormat.from_data(data)
    except AudioFormatError as exc:
        raise ProtocolError(str(exc), "bad_audio_format") from None


def _hints(data: dict[str, Any]) -> list[str]:
    """Home Assistant's vocabulary hints: names first, then terms (top level or in context)."""
    sources: list[dict[str, Any]] = [data]
    context = data.get("context")
    if isinstance(context, dict):
        sources.append(context)
    hints: list[str] = []
    for key in ("transcript_names", "transcript_terms"):
        for source in sources:
            values = source.get(key)
            if isinstance(values, list):
                hints += [v.strip() for v in values if isinstance(v, str) and v.strip()]
    return list(dict.fromkeys(hints))[:MAX_HINTS]


def build_prompt(base: str | None, hints: Iterable[str]) -> str | None:
    """The decoding prompt: the configured prompt, then the hints, within MAX_PROMPT_CHARS."""
    prompt = (base or "").strip()
    listed = ""
    for hint in hints:
        candidate = f"{listed}, {hint}" if listed else hint
        if len(prompt) + len(candidate) + 2 > MAX_PROMPT_CHARS:
            break
        listed = candidate
    if listed:
        prompt = f"{prompt} {listed}." if prompt else f"{listed}."
    return prompt[:MAX_PROMPT_CHARS] or None

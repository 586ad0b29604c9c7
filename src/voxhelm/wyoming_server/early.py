"""Early decoding: transcribe a voice command while its trailing silence still streams in.

Home Assistant streams the microphone in real time and sends ``audio-stop`` only after its
own VAD has heard the speaker stop (0.5-1 s of silence). Whisper does not need that
silence. So while audio arrives, the speech end is watched (Silero VAD, every
:data:`CHECK_SECONDS` of audio); once :data:`PAUSE_MS` of silence follow the speech, the
audio so far is decoded at once. A decode of a short command takes about half a second
on one core (mostly Whisper's encoder, which always sees a 30 s window), so it has to
start early in the trailing silence to be done when ``audio-stop`` comes.

At ``audio-stop`` that result is used if no speech came after the decoded stretch;
otherwise (the speaker only paused) the whole command is decoded as usual. Either way
the transcript is one of the complete command.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from voxhelm.audio import Audio
from voxhelm.stt import vad
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.wyoming")

CHECK_SECONDS = 0.08  # how much new audio between two looks for the end of speech
PAUSE_MS = 150  # silence after speech that starts a decode (a longer pause may follow)
MAX_SECONDS = 20.0  # longer commands are decoded at audio-stop only (VAD cost grows)

Decode = Callable[[Audio], Transcript]


@dataclass(frozen=True)
class EarlyResult:
    """A transcript of the first ``covered`` seconds of a command."""

    covered: float
    transcript: Transcript

    def covers(self, audio: Audio) -> bool:
        """Whether all speech in the whole command ``audio`` lies in the decoded stretch."""
        end = _speech_end(audio)
        return end is not None and end <= self.covered


class EarlyDecoder:
    """One command's early decoding; at most one look or decode runs at a time."""

    def __init__(self, decode: Decode) -> None:
        self._decode = decode
        self._task: asyncio.Task[None] | None = None
        self._checked = 0.0
        self._decoded_end: float | None = None
        self.result: EarlyResult | None = None

    def offer(self, seconds: float, snapshot: Callable[[], Audio]) -> None:
        """``seconds`` of audio have arrived; maybe look at ``snapshot()`` (on the loop)."""
        if seconds > MAX_SECONDS or seconds - self._checked < CHECK_SECONDS:
            return
        if self._task is not None and not self._task.done():
            return
        self._checked = seconds
        self._task = asyncio.create_task(self._look(snapshot()))
        self._task.add_done_callback(_retrieve)

    async def _look(self, audio: Audio) -> None:
        end = await asyncio.to_thread(_speech_end, audio)
        if end is None or end > audio.duration - PAUSE_MS / 1000 or end == self._decoded_end:
            return  # no speech yet, still speaking, or this speech is decoded already
        self._decoded_end = end
        transcript = await asyncio.to_thread(self._decode, audio)
        self.result = EarlyResult(audio.duration, transcript)

    async def settle(self) -> EarlyResult | None:
        """Wait for a look or decode under way; the latest result, if any."""
        if self._task is not None:
            try:
                await self._task
            except Exception:
                # The decode at audio-stop reports a real problem again; here it only costs
                # the head start.
                logger.warning("wyoming: early decoding failed", exc_info=True)
                return None
        return self.result


def _speech_end(audio: Audio) -> float | None:
    """Where the last speech ends, unpadded; pauses of :data:`PAUSE_MS` end speech."""
    spans = vad.speech_spans(audio, min_silence_ms=PAUSE_MS, pad_ms=0)
    return spans[-1][1] if spans else None


def _retrieve(task: asyncio.Task[None]) -> None:
    # A look nobody settles (the client left) must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()

"""Early decoding: transcribe a voice command while its trailing silence still streams in.

Home Assistant streams the microphone in real time and sends ``audio-stop`` only after its
own VAD has heard the speaker stop (0.5-1 s of silence). Whisper does not need that
silence. So while audio arrives, the speech end is watched (Silero VAD, every
:data:`CHECK_SECONDS` of audio); once the speech has ended, the audio so far is decoded at
once. At ``audio-stop`` that result is used if no speech came after the decoded stretch;
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

CHECK_SECONDS = 0.15  # how much new audio between two looks for the end of speech
MAX_SECONDS = 20.0  # longer commands are decoded at audio-stop only (VAD cost grows)

Decode = Callable[[Audio], Transcript]


@dataclass(frozen=True)
class EarlyResult:
    """A transcript of the first ``covered`` seconds of a command."""

    covered: float
    transcript: Transcript

    def covers(self, speech_end: float) -> bool:
        """Whether all speech (ending at ``speech_end``) lies in the decoded stretch."""
        return speech_end <= self.covered


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
        end = await asyncio.to_thread(vad.speech_end, audio)
        if end is None or end >= audio.duration or end == self._decoded_end:
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


def _retrieve(task: asyncio.Task[None]) -> None:
    # A look nobody settles (the client left) must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()

"""Early decoding: transcribe a voice command while its trailing silence still streams in.

Home Assistant streams the microphone in real time and sends ``audio-stop`` only after its
own VAD has heard the speaker stop (0.5-1 s of silence). Whisper does not need that
silence. So every chunk goes through a streaming Silero VAD (:class:`~voxhelm.stt.vad.
SpeechTracker`, a fraction of a millisecond per chunk), and once :data:`PAUSE_MS` of
silence follow the speech, the audio so far is decoded at once. A decode of a short
command takes about half a second on two cores (mostly Whisper's encoder, which always
sees a 30 s window), so it has to start early in the trailing silence to be done when
``audio-stop`` comes.

At ``audio-stop`` the tracker takes the last few milliseconds, and the result is used if
no speech came after the decoded stretch; otherwise (the speaker only paused) the whole
command is decoded as usual. Either way the transcript is one of the complete command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxhelm.audio import SAMPLE_RATE, Audio
from voxhelm.errors import VoxhelmError
from voxhelm.stt import vad
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.wyoming")

PAUSE_MS = 150  # silence after speech that starts a decode (a longer pause may follow)
MAX_SECONDS = 20.0  # longer commands are decoded at audio-stop only (the decode grows)

Decode = Callable[[Audio], Transcript]


@dataclass(frozen=True)
class EarlyResult:
    """A transcript of the first ``covered`` seconds of a command, and the seconds the
    decode took."""

    covered: float
    transcript: Transcript
    seconds: float


class EarlyDecoder:
    """One command's early decoding; at most one decode runs at a time."""

    def __init__(self, decode: Decode) -> None:
        self._decode = decode
        self._tracker: vad.SpeechTracker | None = None
        self._task: asyncio.Task[None] | None = None
        self._decoded_end: float | None = None
        self._result: EarlyResult | None = None
        self._given_up = False  # the VAD failed: the command is decoded at audio-stop only

    def feed(self, samples: np.ndarray, snapshot: Callable[[], Audio]) -> None:
        """``samples`` of 16 kHz audio have arrived (on the loop); ``snapshot()`` is all of
        it so far. Starts a decode when the speech has just ended."""
        if self._given_up:
            return
        try:
            if self._tracker is None:
                self._tracker = vad.SpeechTracker(min_silence_ms=PAUSE_MS)
            tracker = self._tracker
            if tracker.fed > MAX_SECONDS * SAMPLE_RATE:
                return
            tracker.feed(samples)
        except Exception:
            # Only the head start is lost: the command is decoded at audio-stop.
            logger.warning("wyoming: early decoding's VAD failed", exc_info=True)
            self._given_up = True
            return
        end = tracker.speech_end
        if tracker.speaking or end is None or end == self._decoded_end:
            return  # no speech yet, still speaking, or this speech is decoded already
        if self._task is not None and not self._task.done():
            return  # the next chunk looks again
        self._decoded_end = end
        self._task = asyncio.create_task(self._run(snapshot()))
        self._task.add_done_callback(_retrieve)

    async def _run(self, audio: Audio) -> None:
        started = time.monotonic()
        transcript = await asyncio.to_thread(self._decode, audio)
        self._result = EarlyResult(audio.duration, transcript, time.monotonic() - started)

    async def settle(self, audio: Audio) -> EarlyResult | None:
        """The command ended with ``audio`` (all of it): the early result, if one covers
        all of its speech. Waits for a decode under way."""
        tracker = self._tracker
        if tracker is None or self._task is None:
            return None
        complete = not self._given_up and tracker.fed <= MAX_SECONDS * SAMPLE_RATE
        if complete:
            try:
                tracker.feed(audio.samples[tracker.fed :])
                tracker.finish()
            except Exception:
                logger.warning("wyoming: early decoding's VAD failed", exc_info=True)
                complete = False
        try:
            await self._task
        except VoxhelmError as exc:
            # No slot in time, an engine that is unavailable: the decode at audio-stop
            # meets it again and answers it; a client's error is no fault of the server.
            logger.info("wyoming: early decoding gave up: %s (%s)", exc.message, exc.code)
            return None
        except Exception:
            # The decode at audio-stop reports a real problem again; here it only costs
            # the head start.
            logger.warning("wyoming: early decoding failed", exc_info=True)
            return None
        end, result = tracker.speech_end, self._result
        if not complete or result is None or end is None or end > result.covered:
            return None
        return result


def _retrieve(task: asyncio.Task[None]) -> None:
    # A decode nobody settles (the client left) must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()

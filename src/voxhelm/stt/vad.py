"""Voice activity: does a short recording hold speech at all? (Silero VAD, from faster-whisper)

Whisper given silence or hiss invents a phrase ("Thank you.", "you"); for a voice command
that becomes an action. Asking the small Silero model first answers "nothing was said"
without running Whisper, and costs a few milliseconds for a command's length of audio.

:class:`SpeechTracker` runs the same model over a stream, piece by piece, for the
Wyoming server's early decoding: each piece costs only its own frames.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from voxhelm.audio import SAMPLE_RATE, Audio

logger = logging.getLogger("voxhelm.stt")

THRESHOLD = 0.5  # Silero's speech probability for a 32 ms frame to count as speech
MIN_SPEECH_MS = 120  # shorter bursts (a click, a cough) are not a command
MIN_SILENCE_MS = 300  # a pause this long ends a stretch of speech
SPEECH_PAD_MS = 200  # kept around speech (word onsets and endings are quiet)
HYSTERESIS = 0.15  # below the threshold by this much a frame counts as silence (Silero's)
NEG_THRESHOLD = THRESHOLD - HYSTERESIS
FRAME = 512  # samples per Silero frame at 16 kHz
CONTEXT = 64  # samples of the previous frame the model sees with each frame
STATE_SHAPE = (1, 1, 128)  # the model's recurrent state (h and c)


@functools.lru_cache(maxsize=64)  # bounded: server_vad lets a client choose the values
def _options(
    min_silence_ms: int = MIN_SILENCE_MS, pad_ms: int = SPEECH_PAD_MS, threshold: float = THRESHOLD
) -> Any:
    from faster_whisper.vad import VadOptions

    return VadOptions(
        threshold=threshold,
        # Kept above zero (as faster-whisper does) so that a threshold of 0 still works.
        neg_threshold=max(threshold - HYSTERESIS, 0.01),
        min_speech_duration_ms=MIN_SPEECH_MS,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=pad_ms,
    )


def speech_end(audio: Audio) -> float | None:
    """Where the last speech in ``audio`` ends (seconds, padded), or None without speech.

    Speech still going on at the end of ``audio`` ends at ``audio.duration``.
    """
    spans = speech_spans(audio)
    return min(audio.duration, spans[-1][1]) if spans else None


def speech_spans(
    audio: Audio,
    *,
    min_silence_ms: int = MIN_SILENCE_MS,
    pad_ms: int = SPEECH_PAD_MS,
    threshold: float = THRESHOLD,
) -> list[tuple[float, float]]:
    """The stretches of speech in ``audio`` as ``(start, end)`` seconds, padded, in order.

    A pause shorter than ``min_silence_ms`` does not end a stretch; a frame is speech when
    Silero's speech probability for it reaches ``threshold`` (0-1).
    """
    if audio.sample_rate != SAMPLE_RATE:
        raise ValueError("VAD needs 16 kHz audio")
    if len(audio.samples) == 0:
        return []
    from faster_whisper.vad import get_speech_timestamps

    options = _options(min_silence_ms, pad_ms, threshold)
    spans = get_speech_timestamps(audio.samples, options, sampling_rate=SAMPLE_RATE)
    return [(span["start"] / SAMPLE_RATE, span["end"] / SAMPLE_RATE) for span in spans]


def has_speech(audio: Audio) -> bool:
    """Whether Silero VAD finds speech in ``audio`` (16 kHz mono)."""
    return speech_end(audio) is not None


def warm_up() -> None:
    """Load the VAD model now, so that the first command does not pay for it."""
    try:
        has_speech(Audio(np.zeros(SAMPLE_RATE // 2, dtype=np.float32)))
    except Exception:  # the gate then loads on first use, or fails there with a log line
        logger.exception("Silero VAD failed to load")


class SpeechTracker:
    """Silero VAD over audio that arrives piece by piece: has the speaker stopped, and where?

    The model's recurrent state and the tail of the last frame are kept between pieces, so
    each piece costs only its own frames (a fraction of a millisecond for a Wyoming chunk)
    instead of a pass over everything so far. Frames, state and the decision rule are those
    of faster-whisper's ``get_speech_timestamps``, without padding: after :meth:`finish`,
    :attr:`speech_end` is the end of the last span :func:`speech_spans` finds with
    ``pad_ms=0`` and the same ``min_silence_ms``.
    """

    def __init__(self, *, min_silence_ms: int = MIN_SILENCE_MS) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session  # onnxruntime: run() is thread-safe
        self._min_silence = SAMPLE_RATE * min_silence_ms // 1000
        self._min_speech = SAMPLE_RATE * MIN_SPEECH_MS // 1000
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # less than a frame, not yet run
        self._frames = 0
        self._fed = 0
        self._start: int | None = None  # sample where the open span began
        self._quiet_since: int | None = None  # sample where silence began inside the open span
        self._last_end: int | None = None  # sample where the last closed span ended

    @property
    def fed(self) -> int:
        """Samples fed so far."""
        return self._fed

    @property
    def speaking(self) -> bool:
        """Whether speech has begun that ``min_silence_ms`` of silence has not yet ended."""
        return self._start is not None

    @property
    def speech_end(self) -> float | None:
        """Where the last ended span of speech ends (seconds, unpadded); None before any."""
        return None if self._last_end is None else self._last_end / SAMPLE_RATE

    def feed(self, samples: np.ndarray) -> None:
        """Add 16 kHz mono float32 samples that follow those fed before."""
        self._fed += len(samples)
        pending = np.concatenate((self._pending, samples))
        whole = len(pending) - len(pending) % FRAME
        if whole:
            self._run(pending[:whole])
        self._pending = pending[whole:]

    def finish(self) -> None:
        """The stream has ended: the last part frame is padded with silence (a whole frame
        of it when there is none, as ``get_speech_timestamps`` does), and a span still open
        ends with the audio."""
        self._run(np.pad(self._pending, (0, FRAME - len(self._pending))))
        self._pending = np.zeros(0, dtype=np.float32)
        if self._start is not None and self._fed - self._start > self._min_speech:
            self._last_end = self._fed
        self._start = self._quiet_since = None

    def _run(self, samples: np.ndarray) -> None:
        frames = samples.reshape(-1, FRAME)
        contexts = np.vstack((self._context[np.newaxis], frames[:-1, -CONTEXT:]))
        batch = np.concatenate((contexts, frames), axis=1)
        probabilities, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -CONTEXT:].copy()
        for probability in np.asarray(probabilities).reshape(-1):
            self._step(float(probability), self._frames * FRAME)
            self._frames += 1

    def _step(self, probability: float, position: int) -> None:
        if probability >= THRESHOLD:
            self._quiet_since = None
            if self._start is None:
                self._start = position
        elif probability < NEG_THRESHOLD and self._start is not None:
            if self._quiet_since is None:
                self._quiet_since = position
            if position - self._quiet_since >= self._min_silence:
                if self._quiet_since - self._start > self._min_speech:
                    self._last_end = self._quiet_since
                self._start = self._quiet_since = None

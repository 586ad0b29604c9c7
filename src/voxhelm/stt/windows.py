"""Transcription under lane admission, with long audio cut into windows admitted one by one.

A non-interactive caller that held a slot for a whole hour-long file would keep Home
Assistant waiting for the whole hour. Cut into windows of about 30 seconds, each one its
own engine call under its own admission, an interactive request waits at most for the
window in progress. Whisper reads audio in 30-second windows anyway; the cut is put at the
quietest 100 ms near the end of each window so that it rarely splits a word.

Audio of one window or less, and all audio while the scheduler is off, is one engine call,
exactly as without windows.

A caller that names :class:`SpeechPauses` (OpenAI's ``server_vad`` chunking) has the cut put
in a pause that Silero VAD hears instead, by the caller's rules; long audio is then cut into
windows with the scheduler off too, since the cuts are what was asked for.

A window of digital silence is not sent to the engine at all: Whisper hears words in it
("You You You"), and float media whose samples were not numbers (NaN, infinities, which
decoding turns to zeros) would otherwise cost a full decode per window for that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxhelm import capacity
from voxhelm.audio import Audio
from voxhelm.capacity import Admission
from voxhelm.config import Config
from voxhelm.stt import vad
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.registry import ENGINES, resolve
from voxhelm.transcript import Transcript

WINDOW_SECONDS = 30.0
SEARCH_SECONDS = 8.0  # the cut is looked for in the last this-many seconds of a window
MIN_TAIL_SECONDS = 5.0  # a shorter rest joins the window before it instead
FRAME_SECONDS = 0.1
SILENCE_PEAK = 0.5 / 32767
"""Audio whose every sample is smaller than this is digital silence: half a step of 16-bit
audio, so it would be all zeros as the 16-bit WAV that whisper.cpp is given."""
MAX_PAUSE_MS = 5000
"""The longest ``silence_ms`` and ``prefix_padding_ms`` of :class:`SpeechPauses`: a cut is
looked for in the last :data:`SEARCH_SECONDS` of a window, where a longer pause would rarely
fit."""


@dataclass(frozen=True)
class SpeechPauses:
    """Where a window may end: in a pause that Silero VAD hears (OpenAI's ``server_vad``).

    ``threshold`` is Silero's speech probability (0-1) at which a 32 ms frame counts as
    speech (OpenAI's threshold is such a level too); speech ends at a frame below
    ``threshold - 0.15``. Higher needs clearer speech, so breaths and background noise more
    often count as quiet. A cut sits in a quiet stretch of at least ``silence_ms``,
    ``prefix_padding_ms`` before the speech that follows it (at the start of the stretch
    when that is shorter). Among the stretches in the last :data:`SEARCH_SECONDS` of a
    window the latest is taken, so that windows stay near their size; without one the cut
    falls at the quietest 100 ms, as without these rules.
    """

    threshold: float = vad.THRESHOLD
    silence_ms: int = 500
    prefix_padding_ms: int = 300


def window_bounds(
    audio: Audio, window_seconds: float = WINDOW_SECONDS, pauses: SpeechPauses | None = None
) -> list[tuple[int, int]]:
    """``(start, end)`` sample offsets of the windows covering ``audio``, in order; the
    cuts follow ``pauses`` when given."""
    rate = audio.sample_rate

    def cut(begin: int, end: int) -> int:
        if pauses is None:
            return quietest(audio, begin, end)
        return pause_cut(audio, begin, end, pauses)

    return split(
        len(audio.samples),
        size=int(window_seconds * rate),
        tail=int(MIN_TAIL_SECONDS * rate),
        search=int(SEARCH_SECONDS * rate),
        cut=cut,
    )


def split(
    total: int, *, size: int, tail: int, search: int, cut: Callable[[int, int], int]
) -> list[tuple[int, int]]:
    """``(start, end)`` pieces of ``total`` samples, in order: each ends where
    ``cut(begin, end)`` says within its last ``search`` samples (of ``size``); a rest of up
    to ``tail`` samples joins the last piece."""
    bounds: list[tuple[int, int]] = []
    start = 0
    while total - start > size + tail:
        end = cut(start + size - search, start + size)
        bounds.append((start, end))
        start = end
    bounds.append((start, total))
    return bounds


def quietest(audio: Audio, begin: int, end: int) -> int:
    """The middle of the quietest whole frame in ``audio.samples[begin:end]``."""
    samples = audio.samples
    frame = max(1, int(FRAME_SECONDS * audio.sample_rate))
    count = (end - begin) // frame
    if count < 1:
        return end
    frames = samples[begin : begin + count * frame].reshape(count, frame).astype(np.float64)
    energy = np.square(frames).mean(axis=1)
    return begin + int(np.argmin(energy)) * frame + frame // 2


def pause_cut(audio: Audio, begin: int, end: int, pauses: SpeechPauses) -> int:
    """Where in ``audio.samples[begin:end]`` a window ends by ``pauses`` (a sample offset).

    Silero hears a margin on either side too, as long as the longer of ``silence_ms`` and
    ``prefix_padding_ms``: a pause that runs over the border of what was heard into the
    stretch is then long enough whatever its true length, and a cut before speech that
    begins beyond the margin would fall after ``end`` anyway.
    """
    rate = audio.sample_rate
    margin = max(pauses.silence_ms, pauses.prefix_padding_ms) * rate // 1000
    first, last = max(0, begin - margin), min(len(audio.samples), end + margin)
    heard = Audio(audio.samples[first:last], rate)
    spans = vad.speech_spans(
        heard, min_silence_ms=pauses.silence_ms, pad_ms=0, threshold=pauses.threshold
    )
    edges = [0.0, *(edge for span in spans for edge in span), heard.duration]
    for quiet, speech in reversed(list(zip(edges[::2], edges[1::2], strict=True))):
        pause_start, speech_start = first + int(quiet * rate), first + int(speech * rate)
        if speech_start - pause_start < pauses.silence_ms * rate // 1000:
            continue
        low, high = max(pause_start, begin), min(speech_start, end)
        if low < high:
            wanted = max(pause_start, speech_start - pauses.prefix_padding_ms * rate // 1000)
            return min(max(wanted, low), high)
    return quietest(audio, begin, end)


def transcribe(
    audio: Audio,
    model: str,
    request: TranscriptionRequest,
    config: Config,
    *,
    admission: Admission,
    window_seconds: float = WINDOW_SECONDS,
    on_window: Callable[[float, float], None] | None = None,
    pauses: SpeechPauses | None = None,
) -> Transcript:
    """Transcribe ``audio`` on ``model``, holding a lane slot for one window at a time.

    ``admission`` names the lane and bounds each wait for a slot
    (:mod:`voxhelm.capacity`); a wait that runs out raises :class:`~voxhelm.errors.Busy`.
    With no language requested, the language detected in the first window is kept for the
    rest, as Whisper does; the prompt is given to the first window only, as faster-whisper
    does without ``condition_on_previous_text``. Digital silence (:func:`is_silent`) is not
    transcribed: it takes no slot and has no segments (nor a prompt or a language).

    ``on_window(done_seconds, total_seconds)`` is called after each window, with the slot
    already given back: a batch job reports progress there, and may raise to stop.
    ``pauses`` puts the cuts in pauses by its rules (:class:`SpeechPauses`), with the
    scheduler off too; it changes nothing for audio of one window.
    """
    one_call = not config.lanes.enabled and pauses is None
    if one_call or audio.duration <= window_seconds + MIN_TAIL_SECONDS:
        if is_silent(audio):
            whole = _nothing_heard(audio, model, request, config)
        else:
            with capacity.slot(config.lanes, admission):
                whole = ENGINES.transcribe(audio, model, request, config.stt)
        if on_window is not None:
            on_window(audio.duration, audio.duration)
        return whole
    pieces: list[Transcript] = []
    window_request = request
    for start, end in window_bounds(audio, window_seconds, pauses):
        window = Audio(audio.samples[start:end], audio.sample_rate)
        if is_silent(window):
            piece = _nothing_heard(window, model, window_request, config)
        else:
            with capacity.slot(config.lanes, admission):
                piece = ENGINES.transcribe(window, model, window_request, config.stt)
            window_request = dataclasses.replace(
                window_request, prompt=None, language=window_request.language or piece.language
            )
        pieces.append(piece.shifted(start / audio.sample_rate))
        if on_window is not None:
            on_window(end / audio.sample_rate, audio.duration)
    first = pieces[0]
    return Transcript.from_segments(
        (segment for piece in pieces for segment in piece.segments),
        language=window_request.language,
        duration=audio.duration,
        backend=first.backend,
        model=first.model,
        task=first.task,
    ).renumbered()


def is_silent(audio: Audio) -> bool:
    """Whether ``audio`` is digital silence (every sample under :data:`SILENCE_PEAK`)."""
    samples = audio.samples
    return not len(samples) or (
        float(samples.max()) < SILENCE_PEAK and float(samples.min()) > -SILENCE_PEAK
    )


def _nothing_heard(
    audio: Audio, model: str, request: TranscriptionRequest, config: Config
) -> Transcript:
    invocation = resolve(model, config.stt)[0]
    return Transcript.from_segments(
        (),
        language=request.language,
        duration=audio.duration,
        backend=invocation.backend,
        model=invocation.model,
        task=request.task,
    )

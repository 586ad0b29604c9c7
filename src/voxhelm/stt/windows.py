"""Transcription under lane admission, with long audio cut into windows admitted one by one.

A non-interactive caller that held a slot for a whole hour-long file would keep Home
Assistant waiting for the whole hour. Cut into windows of about 30 seconds, each one its
own engine call under its own admission, an interactive request waits at most for the
window in progress. Whisper reads audio in 30-second windows anyway; the cut is put at the
quietest 100 ms near the end of each window so that it rarely splits a word.

Audio of one window or less, and all audio while the scheduler is off, is one engine call,
exactly as without windows.

A window of digital silence is not sent to the engine at all: Whisper hears words in it
("You You You"), and float media whose samples were not numbers (NaN, infinities, which
decoding turns to zeros) would otherwise cost a full decode per window for that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from voxhelm import capacity
from voxhelm.audio import Audio
from voxhelm.capacity import Admission
from voxhelm.config import Config
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


def window_bounds(audio: Audio, window_seconds: float = WINDOW_SECONDS) -> list[tuple[int, int]]:
    """``(start, end)`` sample offsets of the windows covering ``audio``, in order."""
    rate = audio.sample_rate
    return split(
        len(audio.samples),
        size=int(window_seconds * rate),
        tail=int(MIN_TAIL_SECONDS * rate),
        search=int(SEARCH_SECONDS * rate),
        cut=lambda begin, end: quietest(audio, begin, end),
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


def transcribe(
    audio: Audio,
    model: str,
    request: TranscriptionRequest,
    config: Config,
    *,
    admission: Admission,
    window_seconds: float = WINDOW_SECONDS,
    on_window: Callable[[float, float], None] | None = None,
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
    """
    if not config.lanes.enabled or audio.duration <= window_seconds + MIN_TAIL_SECONDS:
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
    for start, end in window_bounds(audio, window_seconds):
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

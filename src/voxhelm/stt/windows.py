"""Transcription under lane admission, with long audio cut into windows admitted one by one.

A non-interactive caller that held a slot for a whole hour-long file would keep Home
Assistant waiting for the whole hour. Cut into windows of about 30 seconds, each one its
own engine call under its own admission, an interactive request waits at most for the
window in progress. Whisper reads audio in 30-second windows anyway; the cut is put at the
quietest 100 ms near the end of each window so that it rarely splits a word.

Audio of one window or less, and all audio while the scheduler is off, is one engine call,
exactly as without windows.

*Side by side.* One window keeps about one core busy, so long audio alone on an idle
machine would leave the other cores idle. The windows after the first run on up to
``VOXHELM_LANE_SLOTS`` threads: one waits for its slot as any caller does, the others take a
slot only while one is free and nobody waits for it (:func:`voxhelm.capacity.spare_slot`),
so a long request speeds up on idle slots and gives them up to anyone who comes. Engines
that decode several windows in one batched call (faster-whisper, up to
``VOXHELM_FASTERWHISPER_BATCH_SIZE``) get consecutive windows shared out evenly among the
threads, each group one call; windows are then at most 30 s. The first window runs on its
own first when it carries a prompt or must tell the language (a multilingual model and no
language requested). Batches need the reserved interactive slot
(``VOXHELM_LANE_INTERACTIVE_SLOTS``): without one a voice command waits for a shared slot,
and so for at most one window, never a batch. A streamed request (``on_segment``) runs its
windows one by one, in order, so that its first words come as early as possible.

A caller that names :class:`SpeechPauses` (OpenAI's ``server_vad`` chunking) has the cut put
in a pause that Silero VAD hears instead, by the caller's rules; long audio is then cut into
windows with the scheduler off too, since the cuts are what was asked for.

A window of digital silence is not sent to the engine at all: Whisper hears words in it
("You You You"), and float media whose samples were not numbers (NaN, infinities, which
decoding turns to zeros) would otherwise cost a full decode per window for that.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
BATCH_TAIL_SECONDS = 1.0  # the same, for windows decoded in batches (at most 30 s each)
SPARE_POLL_SECONDS = 0.25  # how often an idle helper looks for a free slot
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
    audio: Audio,
    window_seconds: float = WINDOW_SECONDS,
    pauses: SpeechPauses | None = None,
    *,
    tail_seconds: float = MIN_TAIL_SECONDS,
) -> list[tuple[int, int]]:
    """``(start, end)`` sample offsets of the windows covering ``audio``, in order; the
    cuts follow ``pauses`` when given. A rest of up to ``tail_seconds`` joins the last
    window."""
    rate = audio.sample_rate

    def cut(begin: int, end: int) -> int:
        if pauses is None:
            return quietest(audio, begin, end)
        return pause_cut(audio, begin, end, pauses)

    return split(
        len(audio.samples),
        size=int(window_seconds * rate),
        tail=int(tail_seconds * rate),
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
    """Transcribe ``audio`` on ``model``, holding a lane slot for one engine call at a time.

    ``admission`` names the lane and bounds each wait for a slot
    (:mod:`voxhelm.capacity`); a wait that runs out raises :class:`~voxhelm.errors.Busy`.
    Long audio is cut into windows; how they run is the module doc's *Side by side*.
    With no language requested, the language detected in the first window is kept for the
    rest, as Whisper does; the prompt is given to the first window only, as faster-whisper
    does without ``condition_on_previous_text``. Digital silence (:func:`is_silent`) is not
    transcribed: it takes no slot and has no segments (nor a prompt or a language).

    ``on_window(done_seconds, total_seconds)`` is called on this thread after each engine
    call, with its slot already given back: a batch job reports progress there, and may
    raise to stop (calls under way on other threads finish first). ``pauses`` puts the cuts
    in pauses by its rules (:class:`SpeechPauses`), with the scheduler off too; it changes
    nothing for audio of one window.
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
    streaming = request.on_segment is not None
    batch, language = (1, None) if streaming else ENGINES.windowing(model, config.stt)
    if not config.lanes.interactive_slots:
        batch = 1  # interactive work shares the slots: it waits for one window at most
    if batch > 1:  # at most 30 s each, all that a batched decode reads of a window
        bounds = window_bounds(
            audio, window_seconds - BATCH_TAIL_SECONDS, pauses, tail_seconds=BATCH_TAIL_SECONDS
        )
    else:
        bounds = window_bounds(audio, window_seconds, pauses)
    rate = audio.sample_rate
    heard = [(s, e) for s, e in bounds if not is_silent(Audio(audio.samples[s:e], rate))]
    run = _Run(audio, model, config, admission, on_window)
    run.done = sum(end - start for start, end in bounds) - sum(e - s for s, e in heard)
    pieces: list[Transcript] = []
    language = request.language or language
    if heard and (streaming or language is None or request.prompt):
        # The first window on its own: it carries the prompt and tells the language.
        pieces += run.groups([heard[:1]], request, workers=1)
        heard = heard[1:]
        language = language or pieces[0].language
    rest = dataclasses.replace(request, prompt=None, language=language)
    workers = 1 if streaming else max(1, min(config.lanes.slots, len(heard)))
    size = max(1, min(batch, -(-len(heard) // workers)))
    pieces += run.groups([heard[i : i + size] for i in range(0, len(heard), size)], rest, workers)
    if not pieces:
        if on_window is not None:
            on_window(audio.duration, audio.duration)
        return _nothing_heard(audio, model, request, config)
    return Transcript.joined(pieces, language, audio.duration)


class _Run:
    """The engine calls of one windowed transcription: groups of windows, each one call
    under its own admission, on up to ``workers`` threads (the module doc's *Side by
    side*)."""

    def __init__(
        self,
        audio: Audio,
        model: str,
        config: Config,
        admission: Admission,
        on_window: Callable[[float, float], None] | None,
    ) -> None:
        self.audio = audio
        self.model = model
        self.config = config
        self.admission = admission
        self.on_window = on_window
        self.done = 0  # samples transcribed, or skipped as silence

    def groups(
        self, groups: list[list[tuple[int, int]]], request: TranscriptionRequest, workers: int
    ) -> list[Transcript]:
        """The transcripts of ``groups`` (timed from the audio's start), in order."""
        if not groups:
            return []
        pending = collections.deque(enumerate(groups))
        finished: queue.SimpleQueue[tuple[int, Transcript | BaseException]] = queue.SimpleQueue()
        stop = threading.Event()
        lock = threading.Lock()

        def take() -> tuple[int, list[tuple[int, int]]] | None:
            with lock:
                return pending.popleft() if pending and not stop.is_set() else None

        def lead() -> None:
            while (item := take()) is not None:
                with capacity.slot(self.config.lanes, self.admission):
                    finished.put((item[0], self._decode(item[1], request)))

        def spare() -> None:
            while pending and not stop.is_set():
                with capacity.spare_slot(self.config.lanes, self.admission) as free:
                    if free and (item := take()) is not None:
                        finished.put((item[0], self._decode(item[1], request)))
                        continue
                stop.wait(SPARE_POLL_SECONDS)

        def guarded(work: Callable[[], None]) -> None:
            try:
                work()
            except BaseException as exc:  # handed to the calling thread, which raises it
                finished.put((-1, exc))

        results: dict[int, Transcript] = {}
        with ThreadPoolExecutor(workers, thread_name_prefix="voxhelm-window") as pool:
            for work in [lead] + [spare] * (workers - 1):
                pool.submit(contextvars.copy_context().run, guarded, work)
            try:
                while len(results) < len(groups):
                    index, outcome = finished.get()
                    if isinstance(outcome, BaseException):
                        raise outcome
                    results[index] = outcome
                    self.done += sum(end - start for start, end in groups[index])
                    if self.on_window is not None:
                        rate = self.audio.sample_rate
                        self.on_window(self.done / rate, self.audio.duration)
            finally:
                stop.set()  # calls under way finish; no new one starts
        return [results[index] for index in range(len(groups))]

    def _decode(self, group: list[tuple[int, int]], request: TranscriptionRequest) -> Transcript:
        """One engine call on the windows of ``group``: the span they cover, cut into them."""
        first, last = group[0][0], group[-1][1]
        span = Audio(self.audio.samples[first:last], self.audio.sample_rate)
        windows = [(start - first, end - first) for start, end in group] if len(group) > 1 else ()
        piece = ENGINES.transcribe(span, self.model, request, self.config.stt, windows=windows)
        return piece.shifted(first / self.audio.sample_rate)


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

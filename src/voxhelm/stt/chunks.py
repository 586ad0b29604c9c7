"""Long recordings as chunks: cut at silences, transcribed side by side, checkpointed, stitched.

An hour-long episode is cut into chunks of about ``VOXHELM_CHUNK_SECONDS`` (600). Each cut
is put in the longest pause that Silero VAD finds in the last stretch before the target
length, so no word is split (without any pause there, the quietest 100 ms is taken).
Chunks are independent engine work: up to ``VOXHELM_CHUNK_WORKERS`` of them run at once,
each through :func:`voxhelm.stt.windows.transcribe`, so each still takes a lane slot for
one engine call at a time (a window, or a small batch of them) and interactive requests go
first. One Whisper decode keeps about one core busy, so two chunks side by side finish a
long job in about half the time of one pass.

Each finished chunk is saved through a :class:`Checkpoints` store under a fingerprint of its
audio and of the request; a job that runs again (its worker was killed, the job re-claimed)
loads the chunks that match and transcribes only the rest. The caller's ``report`` runs on
the calling thread between chunk windows: it reports progress and may raise to stop (the
job was canceled); the running chunks then stop after their current window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voxhelm import boundedjson
from voxhelm.audio import Audio
from voxhelm.capacity import Admission
from voxhelm.config import Config
from voxhelm.stt import vad, windows
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.transcript import Segment, Transcript, Word

logger = logging.getLogger("voxhelm.stt")

SEARCH_FRACTION = 0.5  # a cut is looked for in the last half of a chunk...
MAX_SEARCH_SECONDS = 60.0  # ...but in no more than the last minute
MIN_GAP_SECONDS = 0.2  # a pause shorter than this is not a place to cut
REPORT_SECONDS = 0.5  # how often progress is reported while chunks run
CHECKPOINT_VERSION = 1


class Checkpoints(Protocol):
    """Where finished chunks are kept between attempts (``None`` from ``load``: not there)."""

    def load_checkpoint(self, name: str) -> bytes | None: ...

    def save_checkpoint(self, name: str, data: bytes) -> None: ...


class ChunkStopped(Exception):
    """A chunk stopped between windows because the job is stopping."""


@dataclass(frozen=True)
class Progress:
    """How far a chunked transcription is: seconds of audio done, of all, and an estimate."""

    done_seconds: float
    total_seconds: float
    eta_seconds: float | None  # None until a chunk window has finished in this run

    @property
    def fraction(self) -> float:
        return self.done_seconds / self.total_seconds if self.total_seconds else 1.0


def chunk_bounds(audio: Audio, chunk_seconds: float) -> list[tuple[int, int]]:
    """``(start, end)`` sample offsets of the chunks covering ``audio``, in order.

    Audio up to a quarter longer than ``chunk_seconds`` stays one chunk.
    """
    rate = audio.sample_rate
    size = int(chunk_seconds * rate)
    return windows.split(
        len(audio.samples),
        size=size,
        tail=size // 4,
        search=int(min(MAX_SEARCH_SECONDS, chunk_seconds * SEARCH_FRACTION) * rate),
        cut=lambda begin, end: _pause_before(audio, begin, end),
    )


def _pause_before(audio: Audio, begin: int, end: int) -> int:
    """The middle of the longest pause in ``audio.samples[begin:end]`` (as sample offset)."""
    rate = audio.sample_rate
    stretch = Audio(audio.samples[begin:end], rate)
    spans = vad.speech_spans(stretch)
    edges = [0.0] + [edge for span in spans for edge in span] + [stretch.duration]
    gaps = [(edges[i + 1] - edges[i], edges[i]) for i in range(0, len(edges) - 1, 2)]
    # A stretch of speech running into either border leaves no real pause there.
    if spans and spans[0][0] <= 0.0:
        gaps = gaps[1:]
    if spans and spans[-1][1] >= stretch.duration:
        gaps = gaps[:-1]
    longest = max(gaps, default=(0.0, 0.0))
    if not spans or longest[0] < MIN_GAP_SECONDS:  # music, noise, one long sentence
        return windows.quietest(audio, begin, end)
    return begin + int((longest[1] + longest[0] / 2) * rate)


def transcribe(
    audio: Audio,
    model: str,
    request: TranscriptionRequest,
    config: Config,
    *,
    admission: Admission,
    checkpoints: Checkpoints,
    report: Callable[[Progress], None],
) -> Transcript:
    """Transcribe ``audio`` chunk by chunk (see the module doc); one chunk is simply
    :func:`voxhelm.stt.windows.transcribe` on this thread."""
    bounds = chunk_bounds(audio, config.chunks.chunk_seconds)
    total = audio.duration
    if len(bounds) == 1:
        started = time.monotonic()

        def on_window(done: float, _total: float) -> None:
            report(Progress(done, total, _eta(done, 0.0, total, started)))

        return windows.transcribe(
            audio, model, request, config, admission=admission, on_window=on_window
        )
    run = _Run(audio, model, request, config, admission=admission, bounds=bounds)
    return run.execute(checkpoints, report)


class _Run:
    """One chunked transcription: the chunks, their threads and what they have done."""

    def __init__(
        self,
        audio: Audio,
        model: str,
        request: TranscriptionRequest,
        config: Config,
        *,
        admission: Admission,
        bounds: Sequence[tuple[int, int]],
    ) -> None:
        self.audio = audio
        self.model = model
        self.request = request
        self.config = config
        self.admission = admission
        self.bounds = list(bounds)
        self.stop = threading.Event()
        self.done_seconds = [0.0] * len(self.bounds)  # written by the chunks' threads

    def execute(self, checkpoints: Checkpoints, report: Callable[[Progress], None]) -> Transcript:
        pieces: dict[int, Transcript] = {}
        fingerprints = [self.fingerprint(index) for index in range(len(self.bounds))]
        for index, fingerprint in enumerate(fingerprints):
            restored = _restore(checkpoints.load_checkpoint(_name(index)), fingerprint)
            if restored is not None:
                pieces[index] = restored
                self.done_seconds[index] = self.seconds(index)
        if pieces:
            logger.info("chunks: %d of %d restored from checkpoints", len(pieces), len(self.bounds))
        restored_seconds = sum(self.done_seconds)
        total = self.audio.duration
        started = time.monotonic()
        workers = max(1, min(self.config.chunks.workers, len(self.bounds) - len(pieces)))
        with ThreadPoolExecutor(workers, thread_name_prefix="voxhelm-chunk") as pool:
            running: dict[Future[Transcript], int] = {
                pool.submit(self.transcribe_chunk, index): index
                for index in range(len(self.bounds))
                if index not in pieces
            }
            try:
                while running:
                    finished, _ = wait(running, REPORT_SECONDS, FIRST_COMPLETED)
                    for future in finished:
                        index = running.pop(future)
                        pieces[index] = piece = future.result()
                        checkpoints.save_checkpoint(_name(index), _dump(piece, fingerprints[index]))
                    done = sum(self.done_seconds)
                    report(Progress(done, total, _eta(done, restored_seconds, total, started)))
            except BaseException:
                self.stop.set()
                for future in running:
                    future.cancel()
                raise
        return stitch([pieces[index] for index in range(len(self.bounds))], total)

    def seconds(self, index: int) -> float:
        start, end = self.bounds[index]
        return (end - start) / self.audio.sample_rate

    def fingerprint(self, index: int) -> str:
        """What a checkpoint must match: this chunk's samples and the request."""
        start, end = self.bounds[index]
        digest = hashlib.sha256()
        digest.update(
            json.dumps(
                [CHECKPOINT_VERSION, self.model, start, end, *_request_key(self.request, index)]
            ).encode()
        )
        digest.update(np.ascontiguousarray(self.audio.samples[start:end]).tobytes())
        return digest.hexdigest()

    def transcribe_chunk(self, index: int) -> Transcript:
        start, end = self.bounds[index]
        offset = start / self.audio.sample_rate
        request = self.request if index == 0 else dataclasses.replace(self.request, prompt=None)

        def on_window(done: float, _total: float) -> None:
            self.done_seconds[index] = done
            if self.stop.is_set():
                raise ChunkStopped

        if self.stop.is_set():
            raise ChunkStopped
        piece = windows.transcribe(
            Audio(self.audio.samples[start:end], self.audio.sample_rate),
            self.model,
            request,
            self.config,
            admission=self.admission,
            on_window=on_window,
        )
        return piece.shifted(offset)


def stitch(pieces: Sequence[Transcript], duration: float) -> Transcript:
    """One transcript from chunk transcripts already placed in time: segments in order, ids
    renumbered, and a segment that repeats the one before it across a cut (same text,
    overlapping time) dropped."""
    segments: list[Segment] = []
    for piece in pieces:
        for segment in piece.segments:
            if segments and _same_across_cut(segments[-1], segment):
                continue
            segments.append(segment)
    first = pieces[0]
    return Transcript.from_segments(
        segments,
        language=first.language,
        duration=duration,
        backend=first.backend,
        model=first.model,
        task=first.task,
    ).renumbered()


def _same_across_cut(before: Segment, after: Segment) -> bool:
    return after.start < before.end and after.text.strip() == before.text.strip()


def _eta(done: float, restored: float, total: float, started: float) -> float | None:
    """Seconds left at the pace of this run (restored chunks cost nothing, so they do not count)."""
    worked = done - restored
    elapsed = time.monotonic() - started
    if worked <= 0 or elapsed <= 0:
        return None
    return round((total - done) * elapsed / worked, 1)


def _name(index: int) -> str:
    return f"chunk-{index:04d}.json"


def _request_key(request: TranscriptionRequest, index: int) -> list[Any]:
    return [
        request.language,
        request.prompt if index == 0 else None,
        request.word_timestamps,
        request.task,
        request.temperature,
        list(request.hotwords or ()),
    ]


def _dump(piece: Transcript, fingerprint: str) -> bytes:
    payload = {"fingerprint": fingerprint, "transcript": dataclasses.asdict(piece)}
    return json.dumps(payload).encode()


def _restore(data: bytes | None, fingerprint: str) -> Transcript | None:
    """The checkpointed transcript if ``data`` holds one for ``fingerprint``, else None."""
    if data is None:
        return None
    try:
        # Checkpoints are written by workers, remote ones included: read within bounds.
        payload = boundedjson.decode(data, subject="The checkpoint")
        if payload["fingerprint"] != fingerprint:
            return None
        fields = dict(payload["transcript"])
        fields["segments"] = tuple(_segment(item) for item in fields["segments"])
        return Transcript(**fields)
    except (ValueError, KeyError, TypeError):
        logger.warning("chunks: a damaged checkpoint was ignored")
        return None


def _segment(item: dict[str, Any]) -> Segment:
    return Segment(
        **{
            **item,
            "tokens": tuple(item["tokens"]),
            "words": tuple(Word(**word) for word in item["words"]),
            "flags": tuple(item["flags"]),
        }
    )

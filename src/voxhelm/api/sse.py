"""Streamed transcription: server-sent events in OpenAI's shapes, stopped when the client goes.

``stream=true`` answers ``text/event-stream``: one ``transcript.text.delta`` event per
segment as the engine finishes it, then ``transcript.text.done`` with the whole text, each
as a ``data: <json>`` line, as OpenAI sends them (the official client's
``transcriptions.create(..., stream=True)`` reads them).

The response starts only with the first event, so every error before it (bad media, a
busy server, an English-only model asked for German) is still an ordinary error envelope
with its status; an error after it is sent as a last ``data: {"error": {...}}`` event,
which the official client raises as an ``APIError``.

When the client disconnects, Django cancels the response; the engine is told at its next
segment (``on_segment`` returns False, a window's audio at most) or before its next window,
raises ``TranscriptionCanceled``, and so gives its lane slot and inference thread back.

The done event's text is the transcript after loop repair; in the rare case that repair
re-decodes a looping stretch, it differs from the concatenated deltas, which were sent as
decoded.

With ``response_format=diarized_json`` the speakers are known only once the whole recording
is diarized, so nothing is sent before: then, per segment, a ``transcript.text.delta``
naming its ``segment_id`` and a ``transcript.text.segment`` with its speaker, and the done
event, in the official client's types.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from pydantic import BaseModel

from voxhelm import capacity, metrics
from voxhelm.api.errors import response_for_exception
from voxhelm.api.schemas import (
    DIARIZED_FORMAT,
    TranscriptionParams,
    TranscriptLanguage,
    TranscriptTextDelta,
    TranscriptTextDone,
)
from voxhelm.config import Config
from voxhelm.formats.openai_json import diarized_segments
from voxhelm.stt.base import TranscriptionCanceled, TranscriptionRequest
from voxhelm.transcript import Segment, Transcript

logger = logging.getLogger("voxhelm.api")

Item = tuple[str, Any]  # ("delta", text) | ("done", Transcript) | ("error", exception)


class SegmentFeed:
    """Hands segments from the inference thread to the event loop, and a stop back.

    ``offer`` and ``check`` run on the inference thread; ``next`` and ``cancel`` on the
    event loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, deltas: bool = True) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._canceled = threading.Event()
        self._sent_text = False
        self._deltas = deltas  # False: the segments go out with their speakers at the end

    @property
    def canceled(self) -> bool:
        return self._canceled.is_set()

    def cancel(self) -> None:
        """Ask the engine to stop at its next segment or window."""
        self._canceled.set()

    def _put(self, item: Item) -> None:
        # RuntimeError: the loop is closed, nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def offer(self, segment: Segment) -> bool:
        """``on_segment``: queue the segment's text; False (stop) once canceled."""
        if self.canceled:
            return False
        text = segment.text.strip()
        if text and self._deltas:
            # Deltas join as the transcript's text does: one space between segments.
            self._put(("delta", f" {text}" if self._sent_text else text))
            self._sent_text = True
        return True

    def check(self, _done: float, _total: float) -> None:
        """``on_window``: stop between windows once canceled."""
        if self.canceled:
            raise TranscriptionCanceled

    def run(self, work: Callable[[], Transcript]) -> None:
        """Run ``work`` (on the inference thread) and queue its outcome."""
        try:
            if self.canceled:  # the client left while the request queued for a thread
                raise TranscriptionCanceled
            self._put(("done", work()))
        except BaseException as exc:
            self._put(("error", exc))

    async def next(self) -> Item:
        """The next delta or the transcript; raises what the transcription raised."""
        kind, value = await self._queue.get()
        if kind == "error":
            raise value
        return kind, value


def event(body: BaseModel | dict[str, Any]) -> bytes:
    data = body.model_dump(exclude_none=True) if isinstance(body, BaseModel) else body
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def done_event(transcript: Transcript) -> bytes:
    languages = [TranscriptLanguage(code=transcript.language)] if transcript.language else None
    return event(TranscriptTextDone(text=transcript.text, languages=languages))


def segment_events(transcript: Transcript) -> list[bytes]:
    """A diarized transcript's events before the done event: each segment's text as a
    delta naming it, then the segment with its speaker."""
    events = []
    for number, segment in enumerate(diarized_segments(transcript)):
        text = segment["text"] if number == 0 else f" {segment['text']}"
        events.append(event(TranscriptTextDelta(delta=text, segment_id=segment["id"])))
        events.append(event(segment))
    return events


async def stream_transcription(
    request: HttpRequest,
    params: TranscriptionParams,
    work: Callable[[TranscriptionRequest, Callable[[float, float], None]], Transcript],
    stt_request: TranscriptionRequest,
    config: Config,
) -> StreamingHttpResponse:
    """Start ``work`` on the inference pool and answer with its events once the first is
    ready. ``work(request, on_window)`` runs the transcription on the inference thread."""
    diarized = params.response_format == DIARIZED_FORMAT
    feed = SegmentFeed(asyncio.get_running_loop(), deltas=not diarized)
    streamed = dataclasses.replace(stt_request, on_segment=feed.offer)
    pool = capacity.transcription_pool(config)
    pool.submit(lambda: feed.run(lambda: work(streamed, feed.check)))  # Busy: a 429 envelope
    try:
        first = await feed.next()
    except BaseException as exc:
        feed.cancel()
        if isinstance(exc, asyncio.CancelledError):
            _count_disconnect()
        raise
    response = StreamingHttpResponse(
        _events(request, first, feed, diarized=diarized), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


async def _events(
    request: HttpRequest, first: Item, feed: SegmentFeed, *, diarized: bool
) -> AsyncIterator[bytes]:
    item = first
    finished = False
    try:
        while True:
            kind, value = item
            if kind == "done":
                for segment in segment_events(value) if diarized else ():
                    yield segment
                yield done_event(value)
                finished = True
                return
            yield event(TranscriptTextDelta(delta=value))
            item = await feed.next()
    except Exception as exc:
        # The status line is sent: the error goes out as a last event, in the envelope.
        envelope = json.loads(response_for_exception(request, exc).content)
        finished = True
        yield event(envelope)
    finally:
        if not finished:
            feed.cancel()
            _count_disconnect()


def _count_disconnect() -> None:
    metrics.stt_streams_canceled.inc()
    logger.info("streamed transcription stopped: the client disconnected")

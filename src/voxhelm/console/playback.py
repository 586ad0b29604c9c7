"""Streaming a stored artifact to the browser: whole, or one byte range for the audio player.

Browsers seek in an ``<audio>`` element with ``Range`` requests; without them the player
cannot jump to a segment. Bodies stream from the artifact store in chunks through an async
iterator (Django's ASGI handler would read a sync iterator fully into memory first).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import BinaryIO

from django.http import HttpResponse, StreamingHttpResponse

from voxhelm.storage.base import CHUNK_BYTES

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte of a single ``Range`` header, or None for the
    whole body. Raises ValueError when the range cannot be satisfied."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None:
        return None  # absent, multiple ranges or another unit: send everything (allowed)
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text or int(last_text) == 0:
            raise ValueError("empty suffix range")
        first, last = max(0, size - int(last_text)), size - 1
    else:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or first > last:
        raise ValueError("range outside the body")
    return first, last


async def _chunks(stream: BinaryIO, first: int, length: int) -> AsyncIterator[bytes]:
    try:
        await asyncio.to_thread(_skip, stream, first)
        left = length
        while left > 0:
            chunk = await asyncio.to_thread(stream.read, min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(stream.close)


def _skip(stream: BinaryIO, count: int) -> None:
    if not count:
        return
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        stream.seek(count)
        return
    while count > 0:  # a store stream that cannot seek: read past the start
        count -= len(stream.read(min(CHUNK_BYTES, count)) or b"x" * count)


def stream_response(
    stream: BinaryIO, size: int, content_type: str, range_header: str | None = None
) -> HttpResponse | StreamingHttpResponse:
    """200 with the whole body, 206 with the requested range, or 416."""
    try:
        byte_range = parse_range(range_header, size)
    except ValueError:
        stream.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    first, last = byte_range if byte_range else (0, size - 1)
    length = max(0, last - first + 1)
    streaming = StreamingHttpResponse(
        _chunks(stream, first, length),
        content_type=content_type,
        status=206 if byte_range else 200,
    )
    streaming["Content-Length"] = str(length)
    streaming["Accept-Ranges"] = "bytes"
    if byte_range:
        streaming["Content-Range"] = f"bytes {first}-{last}/{size}"
    return streaming

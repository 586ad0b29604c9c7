"""Reading Wyoming events within bounds, and the protocol errors that close a connection.

The ``wyoming`` library's ``async_read_event`` trusts its peer: it reads a header line of
the stream's limit, then ``data_length`` and ``payload_length`` bytes of whatever size the
header asks for, and answers every malformed event with a silent ``None``. Home Assistant
is trusted, but the port is on the LAN, so this reader bounds every part and says what
was wrong (an ``error`` event goes back before the connection is closed).

Wire format: one JSON header line (``type``, optional ``data``, ``data_length``,
``payload_length``), then ``data_length`` bytes of JSON merged into ``data``, then
``payload_length`` bytes of payload.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wyoming.error import Error
from wyoming.event import Event, async_write_event

from voxhelm import boundedjson
from voxhelm.errors import InvalidJson

MAX_HEADER_BYTES = 64 * 1024  # one header line, newline included
MAX_DATA_BYTES = 64 * 1024  # the extra JSON data block
MAX_PAYLOAD_BYTES = 1024 * 1024  # one event's binary payload (an audio chunk)


class ProtocolError(Exception):
    """The peer broke the protocol; ``message`` and ``code`` go back in an ``error`` event."""

    def __init__(self, message: str, code: str = "malformed_event") -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def event(self) -> Event:
        return Error(text=self.message, code=self.code).event()


def optional_string(data: dict[str, Any], key: str, name: str = "") -> str | None:
    """``data[key]`` stripped, None when missing or blank; a ProtocolError naming ``name``
    (else ``key``) when it is not a string."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"'{name or key}' must be a string.", "bad_request")
    return value.strip() or None


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"'{key}' must be a non-negative integer.")
    if value > limit:
        raise ProtocolError(f"'{key}' is over the {limit} byte limit.", "event_too_large")
    return value


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    # The HTTP API's bounds (nesting, numbers, surrogates), with the event's own words.
    try:
        return boundedjson.decode_object(raw, subject=f"The event {what}")
    except InvalidJson as exc:
        raise ProtocolError(exc.message) from None


async def _read_exactly(reader: asyncio.StreamReader, count: int) -> bytes:
    try:
        return await reader.readexactly(count)
    except asyncio.IncompleteReadError:
        raise ProtocolError("The connection closed inside an event.", "truncated_event") from None


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None at a clean end of stream; raises :class:`ProtocolError`.

    ``reader`` must have been created with ``limit=MAX_HEADER_BYTES`` (asyncio enforces the
    header bound while it looks for the newline).
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise ProtocolError(
            "The connection closed inside an event header.", "truncated_event"
        ) from None
    except asyncio.LimitOverrunError:
        line = b""  # over the limit (a line read holds at least its newline)
    if not line or len(line) > MAX_HEADER_BYTES:
        raise ProtocolError(
            f"The event header is over the {MAX_HEADER_BYTES} byte limit.", "event_too_large"
        )
    header = _json_object(line, "header")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ProtocolError("The event header needs a non-empty string 'type'.")
    data = header.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise ProtocolError("The event 'data' must be a JSON object.")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    if data_length:
        data = {**data, **_json_object(await _read_exactly(reader, data_length), "data")}
    payload = await _read_exactly(reader, payload_length) if payload_length else None
    return Event(type=event_type, data=data, payload=payload)


async def write_event(writer: asyncio.StreamWriter, event: Event, timeout: float) -> None:
    """Send ``event``; a peer that does not read it within ``timeout`` gets TimeoutError."""
    await asyncio.wait_for(async_write_event(event, writer), timeout)

"""The bounded event reader, fed byte by byte as a socket would."""

from __future__ import annotations

import asyncio
import json

import pytest

from voxhelm.boundedjson import MAX_DEPTH
from voxhelm.wyoming_server.protocol import (
    MAX_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    ProtocolError,
    read_event,
)


def read(data: bytes, eof: bool = True) -> object:
    async def run() -> object:
        reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
        reader.feed_data(data)
        if eof:
            reader.feed_eof()
        return await read_event(reader)

    return asyncio.run(run())


def test_it_reads_an_event_with_data_and_payload() -> None:
    head = {"type": "audio-chunk", "data": {"rate": 16000}, "data_length": 27}
    extra = json.dumps({"width": 2, "channels": 1}).encode()
    assert len(extra) == 27
    event = read(json.dumps({**head, "payload_length": 4}).encode() + b"\n" + extra + b"abcd")
    assert event.type == "audio-chunk"  # type: ignore[attr-defined]
    assert event.data == {"rate": 16000, "width": 2, "channels": 1}  # type: ignore[attr-defined]
    assert event.payload == b"abcd"  # type: ignore[attr-defined]


def test_a_clean_end_of_stream_is_none() -> None:
    assert read(b"") is None


def test_the_payload_limit_is_inclusive() -> None:
    line = json.dumps({"type": "audio-chunk", "payload_length": MAX_PAYLOAD_BYTES}).encode()
    event = read(line + b"\n" + b"\0" * MAX_PAYLOAD_BYTES)
    assert len(event.payload) == MAX_PAYLOAD_BYTES  # type: ignore[attr-defined]
    line = json.dumps({"type": "audio-chunk", "payload_length": MAX_PAYLOAD_BYTES + 1}).encode()
    with pytest.raises(ProtocolError) as caught:
        read(line + b"\n")
    assert caught.value.code == "event_too_large"


def test_a_header_line_over_the_limit_is_refused_before_it_is_buffered_whole() -> None:
    with pytest.raises(ProtocolError) as caught:
        read(b"{" + b" " * (MAX_HEADER_BYTES + 10), eof=False)
    assert caught.value.code == "event_too_large"


def test_the_error_event_carries_message_and_code() -> None:
    with pytest.raises(ProtocolError) as caught:
        read(b'{"type": ""}\n')
    event = caught.value.event()
    assert event.type == "error"
    assert event.data == {"text": "The event header needs a non-empty string 'type'.",
                          "code": "malformed_event"}  # fmt: skip


@pytest.mark.parametrize("where", ["header", "data"])
def test_json_is_read_within_the_http_apis_bounds(where: str) -> None:
    nested = b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)  # no recursion limit
    if where == "header":
        data = b'{"type": "transcribe", "data": {"x": ' + nested + b"}}\n"
    else:
        data = b'{"type": "transcribe", "data_length": %d}\n' % len(nested) + nested
    with pytest.raises(ProtocolError) as caught:
        read(data)
    assert (caught.value.code, caught.value.message) == (
        "malformed_event",
        f"The event {where} is nested deeper than {MAX_DEPTH} levels.",
    )
    fine = b'{"a":' * (MAX_DEPTH - 2) + b"1" + b"}" * (MAX_DEPTH - 2)
    event = read(b'{"type": "transcribe", "data": {"x": ' + fine + b"}}\n")
    assert event.type == "transcribe"  # type: ignore[attr-defined]

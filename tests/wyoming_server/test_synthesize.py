"""Wyoming TTS end to end with the ``wyoming`` client: info, synthesize, streaming synthesis.

What the server says is checked by ear with the real faster-whisper model.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from tests.speech import EPISODE, HEARD_SYNTHESIS, SENTENCES, word_error_rate
from tests.tts.conftest import listen
from tests.wyoming_server.conftest import WyomingProcess, describe
from voxhelm.audio import Audio, from_pcm16

pytestmark = pytest.mark.slow

TEXT = " ".join(SENTENCES)
SAMPLES_PER_CHUNK = 1024  # VOXHELM_WYOMING_SAMPLES_PER_CHUNK's default
TIMEOUT = 60.0


async def read_until(client: AsyncTcpClient, last: str) -> list[Event]:
    events: list[Event] = []
    while True:
        event = await asyncio.wait_for(client.read_event(), TIMEOUT)
        assert event is not None, f"connection closed after {[e.type for e in events]}"
        events.append(event)
        if event.type in (last, "error"):
            return events


async def synthesize(port: int, synthesize_event: Synthesize) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(synthesize_event.event())
        return await read_until(client, "audio-stop")


def audio_of(events: list[Event]) -> Audio:
    start = AudioStart.from_event(next(e for e in events if e.type == "audio-start"))
    assert (start.width, start.channels) == (2, 1)
    chunks = [AudioChunk.from_event(e) for e in events if e.type == "audio-chunk"]
    assert {(c.rate, c.width, c.channels) for c in chunks} == {(start.rate, 2, 1)}
    return from_pcm16(b"".join(c.audio for c in chunks), start.rate, 1)


def test_it_advertises_its_voices(wyoming: WyomingProcess) -> None:
    event = asyncio.run(describe(wyoming.port))
    assert event is not None
    (program,) = event.data["tts"]
    assert program["name"] == "voxhelm"
    assert program["installed"] is True
    assert program["supports_synthesize_streaming"] is True
    (voice,) = program["voices"]
    assert voice["name"] == "en_US-joe-medium"
    assert voice["languages"] == ["en", "en_US"]
    assert voice["installed"] is True


def test_it_speaks_a_synthesize_request(wyoming: WyomingProcess) -> None:
    events = asyncio.run(synthesize(wyoming.port, Synthesize(text=TEXT)))
    types = [e.type for e in events]
    assert types[0] == "audio-start" and types[-1] == "audio-stop"
    assert set(types[1:-1]) == {"audio-chunk"}
    assert AudioStart.from_event(events[0]).rate == 22050
    sizes = [len(e.payload or b"") for e in events[1:-1]]
    assert set(sizes[:-1]) == {SAMPLES_PER_CHUNK * 2}
    assert word_error_rate(TEXT, listen(audio_of(events))) <= HEARD_SYNTHESIS


def test_a_voice_by_name_or_language_is_used(wyoming: WyomingProcess) -> None:
    for voice in (
        SynthesizeVoice(name="en_US-joe-medium"),
        SynthesizeVoice(language="en_US"),
        SynthesizeVoice(name="no-such-voice"),  # falls back to the default voice
    ):
        events = asyncio.run(synthesize(wyoming.port, Synthesize(SENTENCES[0], voice=voice)))
        assert events[-1].type == "audio-stop", events[-1]
        assert audio_of(events).duration > 1.0


def test_the_connection_stays_open_after_an_answer(wyoming: WyomingProcess) -> None:
    async def twice() -> list[str]:
        async with AsyncTcpClient("127.0.0.1", wyoming.port) as client:
            await client.write_event(Synthesize(text="Hello.").event())
            first = await read_until(client, "audio-stop")
            await client.write_event(Describe().event())
            info = await read_until(client, "info")
            return [first[-1].type, info[-1].type]

    assert asyncio.run(twice()) == ["audio-stop", "info"]


def test_it_streams_sentences_while_the_text_arrives(wyoming: WyomingProcess) -> None:
    text = " ".join(EPISODE[:4])

    async def stream() -> tuple[list[Event], list[Event]]:
        async with AsyncTcpClient("127.0.0.1", wyoming.port) as client:
            await client.write_event(SynthesizeStart().event())
            # The first two sentences, word by word, as a language model writes them.
            words = " ".join(EPISODE[:2]).split(" ")
            for word in words:
                await client.write_event(SynthesizeChunk(text=word + " ").event())
            # The first sentence is complete: its audio comes before the text is finished.
            early = [await asyncio.wait_for(client.read_event(), TIMEOUT) for _ in range(2)]
            for sentence in EPISODE[2:4]:
                await client.write_event(SynthesizeChunk(text=sentence + " ").event())
            # Home Assistant repeats the whole text for servers that cannot stream.
            await client.write_event(Synthesize(text=text).event())
            await client.write_event(SynthesizeStop().event())
            rest = await read_until(client, "synthesize-stopped")
            return [e for e in early if e is not None], rest

    early, rest = asyncio.run(stream())
    assert [e.type for e in early] == ["audio-start", "audio-chunk"]
    events = early + rest
    types = [e.type for e in events]
    assert types.count("audio-start") == 1 and types.count("audio-stop") == 1
    assert types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert "error" not in types
    assert word_error_rate(text, listen(audio_of(events))) <= HEARD_SYNTHESIS


def test_streamed_audio_starts_before_the_whole_text_is_spoken(wyoming: WyomingProcess) -> None:
    async def timings() -> tuple[float, float]:
        async with AsyncTcpClient("127.0.0.1", wyoming.port) as client:
            await client.write_event(SynthesizeStart().event())
            await client.write_event(SynthesizeChunk(text=" ".join(EPISODE)).event())
            await client.write_event(SynthesizeStop().event())
            started = time.monotonic()
            first_chunk = None
            while True:
                event = await asyncio.wait_for(client.read_event(), TIMEOUT)
                assert event is not None
                if event.type == "audio-chunk" and first_chunk is None:
                    first_chunk = time.monotonic() - started
                if event.type == "synthesize-stopped":
                    assert first_chunk is not None
                    return first_chunk, time.monotonic() - started

    first, total = asyncio.run(timings())
    assert first < 0.6 * total, (first, total)


def test_too_much_text_is_an_error_event(wyoming: WyomingProcess) -> None:
    events = asyncio.run(synthesize(wyoming.port, Synthesize(text="Hello there. " * 400)))
    assert [e.type for e in events] == ["error"]
    assert events[0].data["code"] == "input_too_long"
    assert "5000 character limit" in events[0].data["text"]

    async def streamed() -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", wyoming.port) as client:
            await client.write_event(SynthesizeStart().event())
            for _ in range(3):
                await client.write_event(SynthesizeChunk(text="word " * 400).event())
            await client.write_event(SynthesizeStop().event())
            return await read_until(client, "synthesize-stopped")

    events = asyncio.run(streamed())
    assert events[0].type == "error" and events[0].data["code"] == "input_too_long"


def test_empty_text_is_an_error_event(wyoming: WyomingProcess) -> None:
    events = asyncio.run(synthesize(wyoming.port, Synthesize(text="   ")))
    assert [e.type for e in events] == ["error"]
    assert events[0].data["code"] == "empty_input"


def test_a_malformed_synthesize_is_refused_and_the_server_goes_on(
    wyoming: WyomingProcess,
) -> None:
    async def malformed() -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", wyoming.port) as client:
            await client.write_event(Event("synthesize", {"text": ["not", "text"]}))
            return await read_until(client, "never")

    events = asyncio.run(malformed())
    assert events[-1].type == "error" and events[-1].data["code"] == "bad_request"
    again = asyncio.run(synthesize(wyoming.port, Synthesize(text="Still here.")))
    assert again[-1].type == "audio-stop"
    assert wyoming.alive()


def test_a_client_that_leaves_mid_answer_does_not_hurt_the_server(
    wyoming: WyomingProcess,
) -> None:
    async def leave() -> None:
        async with AsyncTcpClient("127.0.0.1", wyoming.port) as client:
            await client.write_event(Synthesize(text=" ".join(EPISODE)).event())
            await asyncio.wait_for(client.read_event(), TIMEOUT)  # audio-start, then gone

    asyncio.run(leave())
    events = asyncio.run(synthesize(wyoming.port, Synthesize(text=SENTENCES[0])))
    assert events[-1].type == "audio-stop"
    assert np.isfinite(audio_of(events).duration)
    assert wyoming.alive()

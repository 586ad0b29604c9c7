"""A language the model cannot transcribe: refused before anything is decoded, and quietly.

The server runs as a real process with JSON logs at debug level, so each test reads the
records it wrote (level, logger, message, traceback) while a command ran. Every decode,
early or at audio-stop, first takes an interactive lane slot, and the lane scheduler logs
each admission: no admission record, no decode.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

from tests.conftest import make_config
from tests.speech import synthesize, word_error_rate
from tests.wyoming_server.conftest import WyomingProcess, start_wyoming, transcribe
from voxhelm.audio import from_pcm16
from voxhelm.config import ConfigError
from voxhelm.wyoming_server.__main__ import build_service
from voxhelm.wyoming_server.handler import SttService
from voxhelm.wyoming_server.info import resolve_settings

pytestmark = pytest.mark.slow

COMMAND = "Please turn on the kitchen lights and open the garden door."
ADMITTED = "lane_scheduler admitted lane=interactive"  # before every decode


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WyomingProcess]:
    """The bundled English-only model, early decoding on (the default), JSON log records."""
    process = start_wyoming(
        tmp_path_factory.mktemp("wyoming-languages"),
        {"VOXHELM_LOG_FORMAT": "json", "VOXHELM_LOG_LEVEL": "debug"},
    )
    yield process
    process.stop()


def records(server: WyomingProcess) -> list[dict[str, Any]]:
    """Every record the server logged so far; a line that is not one fails the test."""
    lines = [line for line in server.log().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def command_records(
    server: WyomingProcess, events: Any
) -> tuple[list[Event], list[dict[str, Any]]]:
    """Run one command (a coroutine giving its events); its events and the records it left."""
    before = len(records(server))
    answer = asyncio.run(events)
    return answer, records(server)[before:]


def decodes(logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in logged if r["message"].startswith(ADMITTED)]


@pytest.mark.parametrize("realtime", [True, False], ids=["microphone", "burst"])
def test_a_language_the_model_cannot_transcribe_is_refused_before_any_decoding(
    server: WyomingProcess, realtime: bool
) -> None:
    # The trailing silence is what starts an early decode while the audio still streams in.
    speech = synthesize(COMMAND, pause_seconds=0.8)
    events, logged = command_records(
        server,
        transcribe(
            server.port,
            speech.samples,
            speech.sample_rate,
            transcribe_event=Transcribe(language="de"),
            realtime=realtime,
        ),
    )
    assert [(e.type, e.data.get("code")) for e in events] == [("error", "unsupported_language")]
    assert "English-only" in events[0].data["text"] and "/" not in events[0].data["text"]
    assert decodes(logged) == []  # neither the early decode nor one at audio-stop ran
    assert [r for r in logged if "exception" in r] == []
    assert [r for r in logged if r["level"] in ("WARNING", "ERROR", "CRITICAL")] == []
    refusal = [r for r in logged if r["logger"] == "voxhelm.wyoming" and r["level"] != "DEBUG"]
    assert [r["level"] for r in refusal] == ["INFO"]
    assert "unsupported_language" in refusal[0]["message"]
    assert "Traceback" not in server.log()


def test_english_on_the_same_server_is_decoded(server: WyomingProcess) -> None:
    # The control of the test above: its assertions see a decode when one runs.
    speech = synthesize(COMMAND, pause_seconds=0.8)
    events, logged = command_records(
        server,
        transcribe(
            server.port,
            speech.samples,
            speech.sample_rate,
            transcribe_event=Transcribe(language="en-US"),
        ),
    )
    assert [e.type for e in events] == ["transcript"]
    assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15
    assert len(decodes(logged)) >= 1
    assert [r for r in logged if "exception" in r] == []


async def without_transcribe_event(port: int, samples: np.ndarray, rate: int) -> list[Event]:
    """A client that sends only audio: the server's default model and language apply."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        data = samples.tobytes()
        for offset in range(0, len(data), 2048):
            await client.write_event(AudioChunk(rate, 2, 1, data[offset : offset + 2048]).event())
        await client.write_event(AudioStop().event())
        events = []
        while (event := await asyncio.wait_for(client.read_event(), 60)) is not None:
            events.append(event)
        return events


def test_a_command_without_a_transcribe_event_uses_the_checked_defaults(
    server: WyomingProcess,
) -> None:
    speech = synthesize(COMMAND, pause_seconds=0.8)
    events, logged = command_records(
        server, without_transcribe_event(server.port, speech.samples, speech.sample_rate)
    )
    assert [e.type for e in events] == ["transcript"]
    assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15
    assert [r for r in logged if "exception" in r] == []


@pytest.mark.parametrize(
    ("env", "setting", "says"),
    [
        ({"VOXHELM_WYOMING_STT_LANGUAGE": "de"}, "VOXHELM_WYOMING_STT_LANGUAGE", "tiny.en"),
        ({"VOXHELM_WYOMING_STT_LANGUAGES": "en,de"}, "VOXHELM_WYOMING_STT_LANGUAGES", "tiny.en"),
        (
            {"VOXHELM_WYOMING_STT_LANGUAGE": "en", "VOXHELM_WYOMING_STT_LANGUAGES": "en,xx"},
            "VOXHELM_WYOMING_STT_LANGUAGES",
            "Unsupported language 'xx'",
        ),
    ],
)
def test_it_refuses_to_start_with_a_default_or_advertised_language_the_model_lacks(
    tmp_path: Path, env: dict[str, str], setting: str, says: str
) -> None:
    # Home Assistant would offer the advertised language, and every command in it would fail.
    with pytest.raises(ConfigError) as refused:
        build_service(make_config(tmp_path, **env))
    (problem,) = refused.value.problems
    assert problem.name == setting
    assert says in problem.message


def test_a_named_model_is_checked_against_the_default_language(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The Wyoming default is the multilingual base with German; a client names the
    # English-only model and sends no language, so the default German reaches tiny.en.
    config = make_config(
        tmp_path, VOXHELM_WYOMING_STT_MODEL="base", VOXHELM_WYOMING_STT_LANGUAGE="de"
    )
    service = SttService(config, resolve_settings(config))
    speech = synthesize(COMMAND, pause_seconds=0.8)
    samples = from_pcm16(speech.samples.tobytes(), speech.sample_rate, 1).samples
    pcm = (samples * 32767).astype("<i2").tobytes()

    async def run() -> list[Event]:
        session = service.session()
        await session.handle_event(Transcribe(name="tiny.en").event())
        assert session.command is not None and session.command.model == "tiny.en"
        for offset in range(0, len(pcm), 2048):
            chunk = AudioChunk(16000, 2, 1, pcm[offset : offset + 2048]).event()
            await session.handle_event(chunk)
            assert session.early is None  # no early decode was started
        reply = await session.handle_event(AudioStop().event())
        return list(reply.events)

    with caplog.at_level("INFO"):
        events = asyncio.run(run())
    assert [(e.type, e.data.get("code")) for e in events] == [("error", "unsupported_language")]
    assert not [r for r in caplog.records if r.exc_info]

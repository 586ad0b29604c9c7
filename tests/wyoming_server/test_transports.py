"""The other transports: ``stdio://`` and ``unix://``, and the server inside ``voxhelm serve``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncUnixClient
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe

from tests.conftest import PRODUCER_TOKEN, free_port, process_env
from tests.speech import synthesize, word_error_rate
from tests.wyoming_server.conftest import SCRIPT, describe, transcribe

pytestmark = pytest.mark.slow

COMMAND = "Turn off the bedroom lights."


def command_events() -> list[Event]:
    speech = synthesize(COMMAND)
    data = speech.samples.tobytes()
    fmt = {"rate": speech.sample_rate, "width": 2, "channels": 1}
    return [
        Transcribe(language="en").event(),
        AudioStart(**fmt).event(),
        *(AudioChunk(audio=data[i : i + 2048], **fmt).event() for i in range(0, len(data), 2048)),
        AudioStop().event(),
    ]


def test_it_serves_two_commands_over_stdio(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "--uri", "stdio://"],
        env=process_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    write_event(Describe().event(), process.stdin)
    for event in command_events() * 2:
        write_event(event, process.stdin)
    process.stdin.flush()
    replies = [read_event(process.stdout) for _ in range(3)]
    process.stdin.close()
    assert process.wait(timeout=30) == 0
    assert [r.type for r in replies if r is not None] == ["info", "transcript", "transcript"]
    for reply in replies[1:]:
        assert reply is not None
        assert word_error_rate(COMMAND, Transcript.from_event(reply).text) <= 0.15


def test_it_serves_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "wyoming.sock"
    process = subprocess.Popen(
        [str(SCRIPT), "--uri", f"unix://{socket_path}"],
        env=process_env(tmp_path),
        stderr=subprocess.DEVNULL,
    )

    async def talk() -> list[Event]:
        for _ in range(300):
            if socket_path.exists():
                break
            await asyncio.sleep(0.1)
        async with AsyncUnixClient(str(socket_path)) as client:
            for event in command_events():
                await client.write_event(event)
            reply = await asyncio.wait_for(client.read_event(), 60)
            return [reply] if reply is not None else []

    try:
        replies = asyncio.run(talk())
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert [r.type for r in replies] == ["transcript"]
    assert word_error_rate(COMMAND, replies[0].data["text"]) <= 0.15
    assert not socket_path.exists()


def test_it_refuses_a_bad_uri(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "--uri", "http://127.0.0.1:1"],
        env=process_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "bad --uri" in result.stderr


@pytest.mark.parametrize("web", [False, True], ids=["voxhelm-wyoming-stt", "serve-wyoming"])
def test_it_refuses_to_start_with_a_language_its_model_lacks(tmp_path: Path, web: bool) -> None:
    port = str(free_port())
    argv = (
        [sys.executable, "-m", "voxhelm.cli", "serve", "--wyoming", "--port", port]
        if web
        else [str(SCRIPT), "--uri", f"tcp://127.0.0.1:{port}"]
    )
    result = subprocess.run(
        argv,
        env=process_env(tmp_path, {"VOXHELM_WYOMING_STT_LANGUAGE": "de"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "refusing to start" in result.stderr
    assert (
        "VOXHELM_WYOMING_STT_LANGUAGE: The model tiny.en is English-only and cannot "
        "transcribe 'de'."
    ) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_voxhelm_serve_wyoming_shares_the_process(tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "voxhelm.cli", "serve", "--port", str(http_port), "--wyoming"],
        env=process_env(
            tmp_path,
            {"VOXHELM_WYOMING_STT_HOST": "127.0.0.1", "VOXHELM_WYOMING_STT_PORT": str(port)},
        ),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        info = None
        for _ in range(300):
            assert process.poll() is None, log_path.read_text()
            try:
                info = asyncio.run(describe(port))
                break
            except OSError:
                time.sleep(0.2)
        assert info is not None and info.type == "info"
        speech = synthesize(COMMAND)
        events = asyncio.run(transcribe(port, speech.samples, speech.sample_rate))
        assert [e.type for e in events] == ["transcript"]
        assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15
        response = httpx.get(
            f"http://127.0.0.1:{http_port}/v1/health",
            headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"},
            timeout=10,
        )
        assert response.json()["stt"]["state"] == "ready"
        # The web app and Wyoming share the process, so the model was loaded once.
        assert log_path.read_text().count("model tiny.en loaded") == 1
    finally:
        process.terminate()
        process.wait(timeout=15)

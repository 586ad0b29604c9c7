"""A real ``voxhelm-wyoming-stt`` process on loopback, and a client that speaks to it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe

from tests.conftest import free_port, process_env, stop_process

SCRIPT = Path(sys.executable).parent / "voxhelm-wyoming-stt"
IDLE_TIMEOUT = 3.0
MAX_AUDIO_SECONDS = 20


@dataclass
class WyomingProcess:
    port: int
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        stop_process(self.process)


async def describe(port: int, timeout: float = 5.0) -> Event | None:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        return await asyncio.wait_for(client.read_event(), timeout)


def start_wyoming(
    root: Path, env: dict[str, str] | None = None, wrapper: Sequence[str] = ()
) -> WyomingProcess:
    """Start ``voxhelm-wyoming-stt`` on a free port and wait until it answers ``describe``."""
    port = free_port()
    log_path = root / "wyoming.log"
    process = subprocess.Popen(
        [*wrapper, str(SCRIPT), "--uri", f"tcp://127.0.0.1:{port}"],
        env=process_env(root, env),
        stdout=log_path.open("w", encoding="utf-8"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = WyomingProcess(port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voxhelm-wyoming-stt exited early:\n{server.log()}")
        try:
            event = asyncio.run(describe(port))
            if event is not None and event.type == "info":
                return server
        except (OSError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"voxhelm-wyoming-stt did not answer:\n{server.log()}")


@pytest.fixture(scope="session")
def wyoming(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WyomingProcess]:
    """One real server for the session: the bundled model, debug lines on, short limits."""
    server = start_wyoming(
        tmp_path_factory.mktemp("wyoming"),
        {
            "VOXHELM_STT_DEBUG_LOGGING": "true",
            "VOXHELM_WYOMING_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
            "VOXHELM_WYOMING_STT_MAX_AUDIO_SECONDS": str(MAX_AUDIO_SECONDS),
            "VOXHELM_WYOMING_STT_PROMPT": "Voxhelm home.",
        },
    )
    yield server
    server.stop()


async def transcribe(
    port: int,
    samples: np.ndarray,
    rate: int,
    *,
    channels: int = 1,
    width: int = 2,
    samples_per_chunk: int = 1024,
    transcribe_event: Transcribe | None = None,
    timeout: float = 60.0,
    realtime: bool = False,
) -> list[Event]:
    """Send one command as Home Assistant does; every event until the server closes.

    ``realtime`` paces the chunks as a microphone would.
    """
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event((transcribe_event or Transcribe(language="en")).event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        data = samples.tobytes()
        step = samples_per_chunk * width * channels
        started = time.monotonic()
        for offset in range(0, len(data), step):
            if realtime:
                due = started + offset / (rate * width * channels)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            chunk = AudioChunk(rate, width, channels, data[offset : offset + step])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        events: list[Event] = []
        while (event := await asyncio.wait_for(client.read_event(), timeout)) is not None:
            events.append(event)
        return events

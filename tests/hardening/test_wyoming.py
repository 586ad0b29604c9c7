"""The Wyoming server under a barrage: malformed events beyond those of
``tests/wyoming_server/test_robustness.py`` (22 cases there, 13 more here: 35), hundreds of
idle sockets, healthy clients served in parallel every time, and memory that stays flat.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import psutil
import pytest
from wyoming.event import read_event

from tests.hardening.conftest import Figures
from tests.speech import synthesize, word_error_rate
from tests.wyoming_server.conftest import WyomingProcess, start_wyoming, transcribe
from tests.wyoming_server.test_robustness import MALFORMED, header, send_raw

pytestmark = [pytest.mark.hardening, pytest.mark.slow]

IDLE_TIMEOUT = 3.0
IDLE_SOCKETS = 200
HEALTHY = "Please turn on the kitchen lights and open the garden door."
MAX_RSS_GROWTH_MIB = 48  # allocator arenas settle over the first rounds

NEW_CASES: dict[str, tuple[bytes, bool, str]] = {
    # name: (bytes sent, half-close after sending, expected error code)
    "empty-line": (b"\n", False, "malformed_event"),
    "json-null-header": (b"null\n", False, "malformed_event"),
    "json-string-header": (b'"audio-chunk"\n', False, "malformed_event"),
    "payload-length-a-string": (
        header(type="audio-chunk", payload_length="10"),
        False,
        "malformed_event",
    ),
    "payload-length-a-float": (
        header(type="audio-chunk", payload_length=1.5),
        False,
        "malformed_event",
    ),
    "payload-length-infinite": (
        b'{"type": "audio-chunk", "payload_length": 1e999}\n',
        False,
        "malformed_event",
    ),
    "data-block-not-an-object": (
        header(type="transcribe", data_length=3) + b"[1]",
        False,
        "malformed_event",
    ),
    "audio-zero-channels": (
        header(type="audio-start", data={"rate": 16000, "width": 2, "channels": 0}),
        False,
        "bad_audio_format",
    ),
    "audio-zero-rate": (
        header(type="audio-start", data={"rate": 0, "width": 2, "channels": 1}),
        False,
        "bad_audio_format",
    ),
    "audio-absurd-rate": (
        header(type="audio-start", data={"rate": 10**9, "width": 2, "channels": 1}),
        False,
        "bad_audio_format",
    ),
    "audio-zero-width": (
        header(type="audio-start", data={"rate": 16000, "width": 0, "channels": 1}),
        False,
        "bad_audio_format",
    ),
    "audio-stop-without-audio": (
        header(type="transcribe") + header(type="audio-stop"),
        False,
        "empty_audio",
    ),
    "language-not-a-string": (
        header(type="transcribe", data={"language": ["en"]}),
        False,
        "bad_request",
    ),
}


@pytest.fixture(scope="module")
def wyoming(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WyomingProcess]:
    server = start_wyoming(
        tmp_path_factory.mktemp("wyoming-hardening"),
        {
            "VOXHELM_WYOMING_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
            "VOXHELM_WYOMING_MAX_CONNECTIONS": str(IDLE_SOCKETS + 56),
            "VOXHELM_WYOMING_STT_MAX_AUDIO_SECONDS": "20",
        },
    )
    yield server
    server.stop()


def rss_mib(server: WyomingProcess) -> float:
    return psutil.Process(server.process.pid).memory_info().rss / 2**20


async def healthy(port: int) -> str:
    speech = synthesize(HEALTHY)
    events = await transcribe(port, speech.samples, speech.sample_rate)
    assert [e.type for e in events] == ["transcript"], events
    return str(events[0].data["text"])


def all_cases() -> dict[str, tuple[bytes, bool, str]]:
    cases = {str(p.id): tuple(p.values) for p in MALFORMED}
    assert not set(cases) & set(NEW_CASES)
    return {**cases, **NEW_CASES}  # type: ignore[dict-item]


async def barrage(port: int) -> tuple[dict[str, list[tuple[str, str | None]]], list[str]]:
    """Every malformed case at once, with three healthy commands running alongside."""
    cases = all_cases()
    healthy_runs = [asyncio.create_task(healthy(port)) for _ in range(3)]
    await asyncio.sleep(0.05)
    answers = await asyncio.gather(
        *(send_raw(port, data, half_close) for data, half_close, _ in cases.values())
    )
    texts = await asyncio.gather(*healthy_runs)
    return (
        {
            name: [(e.type, e.data.get("code")) for e in events]
            for name, events in zip(cases, answers, strict=True)
        },
        texts,
    )


def test_malformed_events_close_only_their_own_connection(
    wyoming: WyomingProcess, figures: Figures
) -> None:
    asyncio.run(barrage(wyoming.port))  # warm-up: the model and buffers are allocated
    before = rss_mib(wyoming)
    cases = all_cases()
    for _round in range(3):
        answers, texts = asyncio.run(barrage(wyoming.port))
        expected = {name: [("error", code)] for name, (_, _, code) in cases.items()}
        assert answers == expected
        assert all(word_error_rate(HEALTHY, text) <= 0.2 for text in texts), texts
    after = rss_mib(wyoming)
    assert wyoming.alive()
    assert "Traceback" not in wyoming.log()
    assert after - before <= MAX_RSS_GROWTH_MIB
    figures.add("wyoming.malformed_cases", len(cases))
    figures.add("wyoming.malformed_rounds", 3)
    figures.add("wyoming.healthy_parallel_ok", f"{3 * 3}/{3 * 3}")
    figures.add("wyoming.rss_mib_before_after_barrage", [round(before, 1), round(after, 1)])


def test_hundreds_of_idle_sockets_neither_block_nor_leak(
    wyoming: WyomingProcess, figures: Figures
) -> None:
    async def scenario() -> tuple[list[str], int, float]:
        idle = [
            await asyncio.open_connection("127.0.0.1", wyoming.port) for _ in range(IDLE_SOCKETS)
        ]
        await asyncio.sleep(0.3)
        held_rss = rss_mib(wyoming)
        texts = [await healthy(wyoming.port) for _ in range(2)]  # while all 200 are held
        # The idle ones are told so and closed by the server after the idle timeout.
        closed = 0
        for reader, writer in idle:
            data = await asyncio.wait_for(reader.read(), IDLE_TIMEOUT + 10)
            event = read_event(io.BytesIO(data))
            closed += event is not None and event.data.get("code") == "idle_timeout"
            writer.close()
        return texts, closed, held_rss

    asyncio.run(healthy(wyoming.port))
    before = rss_mib(wyoming)
    texts, closed, held = asyncio.run(scenario())
    after = rss_mib(wyoming)
    assert all(word_error_rate(HEALTHY, text) <= 0.2 for text in texts), texts
    assert closed == IDLE_SOCKETS
    assert len(psutil.Process(wyoming.process.pid).net_connections(kind="tcp")) <= 2
    assert after - before <= MAX_RSS_GROWTH_MIB
    figures.add("wyoming.idle_sockets", IDLE_SOCKETS)
    figures.add("wyoming.idle_sockets_closed_by_timeout", closed)
    figures.add(
        "wyoming.rss_mib_idle_before_held_after",
        [round(before, 1), round(held, 1), round(after, 1)],
    )


@pytest.fixture(scope="module")
def default_limit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WyomingProcess]:
    server = start_wyoming(
        tmp_path_factory.mktemp("wyoming-default-limit"),
        {"VOXHELM_WYOMING_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT)},
    )
    yield server
    server.stop()


def test_idle_sockets_beyond_the_default_limit_do_not_lock_out_a_healthy_client(
    default_limit_server: WyomingProcess,
) -> None:
    async def scenario() -> None:
        idle = [
            await asyncio.open_connection("127.0.0.1", default_limit_server.port) for _ in range(80)
        ]
        await asyncio.sleep(0.5)
        try:
            # All 64 slots hold silent sockets: the one silent longest makes room.
            await healthy(default_limit_server.port)
        finally:
            for _reader, writer in idle:
                writer.close()

    asyncio.run(scenario())

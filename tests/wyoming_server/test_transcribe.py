"""``voxhelm-wyoming-stt`` end to end with the ``wyoming`` client: describe, speech, silence."""

from __future__ import annotations

import asyncio
import json
import re
import time

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from tests.speech import synthesize, word_error_rate
from tests.wyoming_server.conftest import WyomingProcess, describe, transcribe

pytestmark = pytest.mark.slow

COMMAND = "Please turn on the kitchen lights and open the garden door."


def debug_lines(server: WyomingProcess) -> list[dict[str, object]]:
    return [json.loads(m) for m in re.findall(r"stt_debug (\{.*\})", server.log())]


def test_it_describes_itself_as_an_asr_program(wyoming: WyomingProcess) -> None:
    event = asyncio.run(describe(wyoming.port))
    assert event is not None and event.type == "info"
    (program,) = event.data["asr"]
    assert program["name"] == "voxhelm"
    assert program["installed"] is True
    (model,) = program["models"]
    assert model["name"] == "tiny.en"
    assert model["description"] == "fasterwhisper via Voxhelm"
    assert model["languages"] == ["en"]
    assert [p["name"] for p in event.data["tts"]] == ["voxhelm"]  # see test_synthesize.py


def test_it_transcribes_piper_speech_sent_as_is(wyoming: WyomingProcess) -> None:
    speech = synthesize(COMMAND)
    assert speech.sample_rate == 22050
    events = asyncio.run(transcribe(wyoming.port, speech.samples, speech.sample_rate))
    assert [e.type for e in events] == ["transcript"]  # and then the server closed
    assert events[0].data["language"] == "en"
    assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15


def test_it_converts_8_khz_stereo(wyoming: WyomingProcess) -> None:
    from voxhelm.audio import from_pcm16

    speech = synthesize(COMMAND)
    mono_8k = from_pcm16(speech.samples.tobytes(), speech.sample_rate, 1)
    # from_pcm16 gives 16 kHz; take every other sample after a low-pass by averaging pairs.
    pairs = mono_8k.samples[: len(mono_8k.samples) // 2 * 2].reshape(-1, 2).mean(axis=1)
    pcm = (np.clip(pairs, -1, 1) * 32767).astype("<i2")
    stereo = np.stack([pcm, pcm], axis=1).reshape(-1)
    events = asyncio.run(transcribe(wyoming.port, stereo, 8000, channels=2))
    assert [e.type for e in events] == ["transcript"]
    assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15
    shape = next(
        line["audio_shape"]
        for line in reversed(debug_lines(wyoming))
        if line["audio_shape"]["input"]["rate"] == 8000  # type: ignore[index]
    )
    assert shape["input"]["channels"] == 2  # type: ignore[index]
    assert shape["converted"]["rate"] == 16000  # type: ignore[index]
    assert shape["converted"]["duration_seconds"] == pytest.approx(  # type: ignore[index]
        len(pairs) / 8000, abs=0.02
    )


def test_it_writes_a_debug_line_with_the_hints_in_the_prompt(wyoming: WyomingProcess) -> None:
    speech = synthesize("Turn on the lights in the Wintergarten.")
    request = Transcribe(
        language="en",
        transcript_names=["Wintergarten", "Living Room"],
        transcript_terms=["scene"],
    )
    asyncio.run(
        transcribe(wyoming.port, speech.samples, speech.sample_rate, transcribe_event=request)
    )
    line = next(
        line for line in reversed(debug_lines(wyoming)) if "Wintergarten" in str(line["prompt"])
    )
    assert line["source"] == "wyoming"
    assert line["prompt"] == "Voxhelm home. Wintergarten, Living Room, scene."
    assert line["backend"] == "fasterwhisper"
    assert line["model"] == {"requested": "tiny.en", "resolved": "tiny.en"}
    assert "/" not in json.dumps(line)  # no paths


def test_a_command_streamed_in_real_time_is_decoded_during_its_trailing_silence(
    wyoming: WyomingProcess,
) -> None:
    speech = synthesize(COMMAND, pause_seconds=0.8)  # the silence Home Assistant waits for
    before = len(debug_lines(wyoming))
    events = asyncio.run(
        transcribe(wyoming.port, speech.samples, speech.sample_rate, realtime=True)
    )
    assert [e.type for e in events] == ["transcript"]
    assert word_error_rate(COMMAND, events[0].data["text"]) <= 0.15
    (line,) = debug_lines(wyoming)[before:]
    assert line["early_decode"] is True


async def timed_command(port: int, samples: np.ndarray, rate: int) -> tuple[str, float]:
    """Send a whole command at once; its transcript and how long the client waited for it
    after ``audio-stop``."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        data = samples.tobytes()
        for offset in range(0, len(data), 2048):
            await client.write_event(AudioChunk(rate, 2, 1, data[offset : offset + 2048]).event())
        await client.write_event(AudioStop().event())
        stopped = time.monotonic()
        event = await asyncio.wait_for(client.read_event(), 60)
        waited = time.monotonic() - stopped
        assert event is not None and event.type == "transcript", event
        return str(event.data["text"]), waited


def test_the_debug_line_reports_the_wait_for_an_early_decode_still_running(
    wyoming: WyomingProcess,
) -> None:
    # Sent faster than real time, the speech ends (and its early decode starts) a moment
    # before audio-stop: the client then waits for that decode to finish.
    speech = synthesize(COMMAND, pause_seconds=0.8)
    before = len(debug_lines(wyoming))
    text, waited = asyncio.run(timed_command(wyoming.port, speech.samples, speech.sample_rate))
    assert word_error_rate(COMMAND, text) <= 0.15
    (line,) = debug_lines(wyoming)[before:]
    assert line["early_decode"] is True
    assert waited > 0.1  # the decode was still running (a decode takes about half a second)
    assert 0.5 * waited * 1000 <= line["duration_ms"] <= waited * 1000 + 1  # type: ignore[operator]
    # The decode began before audio-stop: the wait is at most its rest (and a few ms).
    assert line["duration_ms"] <= line["early_decode_ms"] + 100  # type: ignore[operator]
    assert line["realtime_factor"] > 1  # type: ignore[operator]


@pytest.mark.parametrize("pause", [1.2, 0.35])
def test_a_pause_inside_a_command_does_not_cut_it_short(
    wyoming: WyomingProcess, pause: float
) -> None:
    # 0.35 s: long enough to start an early decode of the first half, which arrives
    # while the second half is spoken.
    first = synthesize("Turn on the kitchen lights.", pause_seconds=pause)
    second = synthesize("And open the garden door.", pause_seconds=0.8)
    samples = np.concatenate([first.samples, second.samples])
    before = len(debug_lines(wyoming))
    events = asyncio.run(transcribe(wyoming.port, samples, first.sample_rate, realtime=True))
    text = events[0].data["text"]
    # The early decode of the first half is thrown away; the normalizer keeps "And" inside.
    assert word_error_rate(f"{first.text} {second.text}", text) <= 0.15, text
    (line,) = debug_lines(wyoming)[before:]
    assert line["early_decode"] is True  # the second half's trailing silence was used


@pytest.mark.parametrize(
    "noise",
    [
        pytest.param(np.zeros(3 * 16000, dtype=np.int16), id="digital-silence"),
        pytest.param(
            (np.random.default_rng(7).normal(0, 0.003, 3 * 16000) * 32767).astype(np.int16),
            id="low-white-noise",
        ),
    ],
)
def test_silence_gives_an_empty_transcript_without_running_the_model(
    wyoming: WyomingProcess, noise: np.ndarray
) -> None:
    before = len(debug_lines(wyoming))
    events = asyncio.run(transcribe(wyoming.port, noise, 16000))
    assert [(e.type, e.data["text"]) for e in events] == [("transcript", "")]
    new = debug_lines(wyoming)[before:]
    assert new and new[-1]["vad"] == "no_speech"


def test_it_answers_an_empty_command_with_an_error(wyoming: WyomingProcess) -> None:
    events = asyncio.run(transcribe(wyoming.port, np.zeros(0, dtype=np.int16), 16000))
    assert [(e.type, e.data.get("code")) for e in events] == [("error", "empty_audio")]

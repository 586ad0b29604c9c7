"""Early decoding's parts in-process: the streaming VAD, and the decoder on the real model."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStop
from wyoming.event import Event

from tests.conftest import make_config
from tests.speech import synthesize, word_error_rate
from voxhelm import capacity
from voxhelm.audio import SAMPLE_RATE, Audio, from_pcm16
from voxhelm.stt import vad
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.faster_whisper import FasterWhisperBackend
from voxhelm.transcript import Transcript
from voxhelm.wyoming_server.early import PAUSE_MS, EarlyDecoder, EarlyResult
from voxhelm.wyoming_server.handler import SttService
from voxhelm.wyoming_server.info import resolve_settings

CHUNK = 1024  # samples per piece fed, as the benchmark's client sends them


def spoken(text: str, pause_seconds: float) -> np.ndarray:
    speech = synthesize(text, pause_seconds)
    return from_pcm16(speech.samples.tobytes(), speech.sample_rate, 1).samples


@pytest.fixture(scope="module")
def two_sentences() -> np.ndarray:
    return np.concatenate(
        [spoken("Turn on the kitchen lights.", 0.4), spoken("And open the garden door.", 0.8)]
    )


@pytest.mark.parametrize("min_silence_ms", [PAUSE_MS, vad.MIN_SILENCE_MS])
def test_the_tracker_finds_the_speech_end_the_whole_recording_pass_finds(
    two_sentences: np.ndarray, min_silence_ms: int
) -> None:
    rng = np.random.default_rng(3)
    ends = []
    for cut in range(SAMPLE_RATE // 2, len(two_sentences), 3001):  # every stage of the stream
        samples = two_sentences[:cut]
        spans = vad.speech_spans(Audio(samples), min_silence_ms=min_silence_ms, pad_ms=0)
        tracker = vad.SpeechTracker(min_silence_ms=min_silence_ms)
        offset = 0
        while offset < cut:  # pieces of every size, none aligned to Silero's frames
            size = int(rng.integers(1, 3 * vad.FRAME))
            tracker.feed(samples[offset : offset + size])
            offset += size
        tracker.finish()
        assert tracker.fed == cut
        assert tracker.speech_end == (spans[-1][1] if spans else None), cut
        ends.append(tracker.speech_end)
    assert len({end for end in ends if end is not None}) >= 3  # it saw speech end and go on


def test_the_tracker_says_when_the_speaker_has_stopped(two_sentences: np.ndarray) -> None:
    first_end = vad.speech_spans(Audio(two_sentences), min_silence_ms=PAUSE_MS, pad_ms=0)[0][1]
    tracker = vad.SpeechTracker(min_silence_ms=PAUSE_MS)
    states = []
    for offset in range(0, len(two_sentences), CHUNK):
        tracker.feed(two_sentences[offset : offset + CHUNK])
        states.append((tracker.fed / SAMPLE_RATE, tracker.speaking, tracker.speech_end))
    assert states[0][2] is None  # no speech has ended yet
    # Speaking until the pause has lasted PAUSE_MS (and a frame to see it); then the first
    # sentence has ended where the whole-recording pass says, until the second one begins.
    stopped = next(seconds for seconds, speaking, end in states if end == first_end)
    assert first_end + PAUSE_MS / 1000 <= stopped <= first_end + PAUSE_MS / 1000 + 0.1
    assert all(speaking for seconds, speaking, _ in states if first_end - 0.5 < seconds < first_end)
    assert states[-1][1] is False and states[-1][2] is not None and states[-1][2] > first_end


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperBackend:
    config = make_config().stt
    return FasterWhisperBackend(config.fasterwhisper, tmp_path_factory.mktemp("models"))


async def stream(samples: np.ndarray, engine: FasterWhisperBackend) -> EarlyResult | None:
    """Feed ``samples`` chunk by chunk, in real time (as Home Assistant streams), then settle."""
    decodes: list[float] = []

    def decode(audio: Audio) -> Transcript:
        decodes.append(audio.duration)
        return engine.transcribe(audio, TranscriptionRequest(language="en"))

    decoder = EarlyDecoder(decode)
    for offset in range(0, len(samples), CHUNK):
        piece = samples[offset : offset + CHUNK]
        decoder.feed(piece, functools.partial(Audio, samples[: offset + len(piece)]))
        await asyncio.sleep(len(piece) / SAMPLE_RATE)
    result = await decoder.settle(Audio(samples))
    assert decodes, "no decode started"
    return result


@pytest.mark.slow
def test_a_command_is_decoded_during_its_trailing_silence(engine: FasterWhisperBackend) -> None:
    command = "Please turn on the kitchen lights and open the garden door."
    samples = spoken(command, 0.8)
    result = asyncio.run(stream(samples, engine))
    assert result is not None
    assert result.covered < len(samples) / SAMPLE_RATE - 0.4  # it did not wait for the end
    assert word_error_rate(command, result.transcript.text) <= 0.15


@pytest.mark.slow
def test_speech_after_the_decoded_stretch_voids_the_early_result(
    engine: FasterWhisperBackend,
) -> None:
    # The stream ends while the second sentence is still spoken: no decode covers it.
    samples = np.concatenate([spoken("Turn on the kitchen lights.", 0.6), spoken("And open", 0)])
    assert asyncio.run(stream(samples, engine)) is None


def test_nothing_is_decoded_without_speech() -> None:
    def decode(audio: Audio) -> Transcript:
        raise AssertionError("decoded silence")

    async def run() -> EarlyResult | None:
        decoder = EarlyDecoder(decode)
        silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
        for offset in range(0, len(silence), CHUNK):
            decoder.feed(silence[offset : offset + CHUNK], lambda: Audio(silence))
        return await decoder.settle(Audio(silence))

    assert asyncio.run(run()) is None


def test_a_failing_vad_costs_only_the_head_start(caplog: pytest.LogCaptureFixture) -> None:
    def decode(audio: Audio) -> Transcript:
        raise AssertionError("decoded without a VAD")

    async def run() -> EarlyResult | None:
        decoder = EarlyDecoder(decode)
        samples = spoken("Turn on the kitchen lights.", 0.8).astype(np.float64)  # ONNX refuses
        for offset in range(0, len(samples), CHUNK):
            decoder.feed(samples[offset : offset + CHUNK], lambda: Audio(samples))
        return await decoder.settle(Audio(samples))

    assert asyncio.run(run()) is None  # the command is decoded at audio-stop instead
    failures = [r for r in caplog.records if "VAD failed" in r.getMessage()]
    assert len(failures) == 1  # once per command, not once per chunk


def test_a_busy_server_costs_the_early_decode_its_head_start_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One slot, held by another thread (a batch job's window) for the whole command: the
    # early decode and the decode at audio-stop each wait a tenth of a second and give up.
    config = make_config(
        tmp_path, VOXHELM_LANE_SLOTS="1", VOXHELM_LANE_INTERACTIVE_SLOTS="0",
        VOXHELM_LANE_WAIT_SECONDS="0.1",
    )  # fmt: skip
    service = SttService(config, resolve_settings(config))
    pcm = (spoken("Turn on the kitchen lights.", 0.8) * 32767).astype("<i2").tobytes()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with capacity.slot(config.lanes, capacity.VOICE):
            held.set()
            release.wait(30)

    async def command() -> list[Event]:
        session = service.session()
        await session.handle_event(Transcribe(language="en").event())
        for offset in range(0, len(pcm), 2048):
            await session.handle_event(AudioChunk(16000, 2, 1, pcm[offset : offset + 2048]).event())
            await asyncio.sleep(0.005)  # the early decode starts in the trailing silence
        assert session.early is not None
        return list((await session.handle_event(AudioStop().event())).events)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with caplog.at_level("INFO"):
            events = asyncio.run(command())
    finally:
        release.set()
        holder.join()
    assert [(e.type, e.data.get("code")) for e in events] == [("error", "server_busy")]
    gave_up = [r for r in caplog.records if "early decoding gave up" in r.getMessage()]
    assert len(gave_up) == 1  # the early decode did run into the busy lane
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []

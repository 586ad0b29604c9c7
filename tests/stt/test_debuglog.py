"""The ``stt_debug`` line: its fields, its cuts, and that it names no path or token."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import PRODUCER_TOKEN
from tests.speech import synthesize
from voxhelm import audio
from voxhelm.config import Config
from voxhelm.stt import debuglog
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.registry import ENGINES
from voxhelm.transcript import Segment, Transcript

KEYS = {
    "audio_shape",
    "backend",
    "duration_ms",
    "language",
    "model",
    "prompt",
    "realtime_factor",
    "source",
    "transcript",
}


@pytest.fixture(scope="module")
def clip_wav() -> bytes:
    return synthesize("Please turn on the kitchen lights.").wav_bytes()


def test_previews_are_cut_with_an_ellipsis() -> None:
    assert debuglog.preview("  short  ", 160) == "short"
    assert debuglog.preview(None, 160) is None
    cut = debuglog.preview("word " * 100, 160)
    assert cut is not None and cut.endswith("word...") and len(cut) == 162  # rstripped, then ...
    assert debuglog.preview("x" * 300, 300) == "x" * 300
    assert debuglog.preview("x" * 301, 300) == "x" * 300 + "..."


def test_the_audio_shape_has_sizes_and_format_but_no_path(clip_wav: bytes, tmp_path: Path) -> None:
    path = tmp_path / "secret-name.wav"
    path.write_bytes(clip_wav)
    decoded = audio.decode(path)
    shape = debuglog.audio_shape(decoded, path)
    assert shape == {
        "duration_seconds": round(decoded.duration, 3),
        "sample_rate": 16000,
        "samples": len(decoded.samples),
        "input_bytes": len(clip_wav),
        "input_format": "wav",
    }
    assert "secret-name" not in json.dumps(shape)
    assert debuglog.audio_shape(decoded)["samples"] == len(decoded.samples)


def test_an_unreadable_input_still_gives_the_decoded_shape() -> None:
    decoded = audio.Audio(synthesize("Hello.").samples[:1600].astype("float32") / 32768)
    shape = debuglog.audio_shape(decoded, b"not media")
    assert shape["input_bytes"] == 9
    assert "input_format" not in shape


def test_a_record_has_every_field_and_a_realtime_factor() -> None:
    transcript = Transcript.from_segments(
        [Segment(id=0, start=0.0, end=2.0, text="Hallo " * 80)],
        language="de",
        duration=10.0,
        backend="fasterwhisper",
        model="tiny.en",
    )
    fields = debuglog.record(
        source="http.audio_transcriptions",
        audio={"duration_seconds": 10.0, "sample_rate": 16000, "samples": 160000},
        requested_model="whisper-1",
        request=TranscriptionRequest(language=None, prompt="p" * 200),
        transcript=transcript,
        seconds=2.5,
    )
    assert set(fields) == KEYS
    assert fields["model"] == {"requested": "whisper-1", "resolved": "tiny.en"}
    assert fields["language"] == {"requested": None, "resolved": "de"}
    assert fields["prompt"] == "p" * 160 + "..."
    assert fields["transcript"].endswith("...") and len(fields["transcript"]) <= 303
    assert (fields["duration_ms"], fields["realtime_factor"]) == (2500, 4.0)
    line = debuglog.format_line(fields)
    assert line.startswith("stt_debug {")
    assert list(json.loads(line.removeprefix("stt_debug "))) == sorted(KEYS)


# -- the sync endpoint, in process -----------------------------------------------------------


@pytest.fixture
def transcribe(
    client: Any, auth_headers: dict[str, str], clip_wav: bytes
) -> Callable[..., dict[str, Any]]:
    ENGINES.reset()

    def post(**fields: str) -> dict[str, Any]:
        response = client.post(
            "/v1/audio/transcriptions",
            {"file": SimpleUploadedFile("clip.wav", clip_wav), "model": "whisper-1", **fields},
            headers=auth_headers,
        )
        assert response.status_code == 200, response.content
        return dict(response.json())

    return post


def debug_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "voxhelm.stt" and r.getMessage().startswith("stt_debug ")
    ]


@pytest.mark.slow
def test_the_endpoint_logs_one_line_per_transcription(
    configure: Callable[..., Config],
    transcribe: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    clip_wav: bytes,
) -> None:
    config = configure(VOXHELM_STT_DEBUG_LOGGING="true")
    caplog.set_level("WARNING", logger="voxhelm.stt")
    body = transcribe(language="en", prompt="Kitchen lights.")
    (line,) = debug_lines(caplog)
    (record,) = [r for r in caplog.records if r.getMessage() == line]
    assert record.levelname == "WARNING"
    fields = json.loads(line.removeprefix("stt_debug "))
    assert list(fields) == sorted(KEYS)
    assert fields["source"] == "http.audio_transcriptions"
    assert fields["backend"] == "fasterwhisper"
    assert fields["model"] == {"requested": "whisper-1", "resolved": "tiny.en"}
    assert fields["language"] == {"requested": "en", "resolved": "en"}
    assert fields["prompt"] == "Kitchen lights."
    assert fields["transcript"] == body["text"]
    shape = fields["audio_shape"]
    assert shape["input_format"] == "wav" and shape["input_bytes"] == len(clip_wav)
    assert shape["sample_rate"] == 16000
    assert 1.0 < shape["duration_seconds"] < 5.0
    assert fields["duration_ms"] > 0 and fields["realtime_factor"] > 0
    assert PRODUCER_TOKEN not in line
    assert str(config.paths.var_dir) not in line and "/tmp" not in line and "clip.wav" not in line


@pytest.mark.slow
def test_it_logs_nothing_by_default(
    configure: Callable[..., Config],
    transcribe: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="voxhelm.stt")
    assert "kitchen" in transcribe()["text"].lower()
    assert debug_lines(caplog) == []

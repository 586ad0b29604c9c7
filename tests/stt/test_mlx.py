"""The mlx-whisper engine: availability, payload normalization and the call it makes.

mlx-whisper runs only on Apple Silicon and this suite runs on Linux, so the engine call is
checked against a stand-in ``mlx_whisper`` module placed in ``sys.modules``: the one fake,
at the library boundary. Everything on our side of it (registry, audio, normalization) is real.
"""

from __future__ import annotations

import importlib.machinery
import json
import math
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_config
from tests.speech import synthesize
from voxhelm import audio
from voxhelm.config import is_apple_silicon
from voxhelm.formats import render
from voxhelm.stt import mlx
from voxhelm.stt.base import BackendUnavailable, TranscriptionFailed, TranscriptionRequest
from voxhelm.stt.mlx import MlxBackend, transcript_from_payload
from voxhelm.stt.registry import Engines

# The shape mlx_whisper.transcribe returns (openai-whisper's result dict), here with
# word_timestamps=True: leading spaces in texts, statistics per segment, words per segment.
MLX_PAYLOAD: dict[str, Any] = {
    "text": " The quick brown fox jumps over the lazy dog. Please turn on the lights.",
    "language": "en",
    "segments": [
        {
            "id": 0,
            "seek": 0,
            "start": 0.0,
            "end": 2.62,
            "text": " The quick brown fox jumps over the lazy dog.",
            "tokens": [50364, 440, 1702, 3699, 21283, 50495],
            "temperature": 0.0,
            "avg_logprob": -0.2142,
            "compression_ratio": 0.8913,
            "no_speech_prob": 0.0118,
            "words": [
                {"word": " The", "start": 0.0, "end": 0.24, "probability": 0.91},
                {"word": " quick", "start": 0.24, "end": 0.5, "probability": 0.99},
            ],
        },
        {
            "id": 1,
            "seek": 262,
            "start": 3.2,
            "end": 5.1,
            "text": " Please turn on the lights.",
            "tokens": [50364, 2555, 1261, 322, 264, 5811, 13, 50459],
            "temperature": 0.0,
            "avg_logprob": -0.31,
            "compression_ratio": 0.75,
            "no_speech_prob": 0.02,
            "speaker": "SPEAKER_07",
        },
    ],
}


def normalize(payload: dict[str, Any]) -> Any:
    return transcript_from_payload(payload, duration=5.5, backend="mlx", model="m")


def test_it_keeps_text_language_segments_statistics_and_words() -> None:
    transcript = normalize(MLX_PAYLOAD)
    assert transcript.text == (
        "The quick brown fox jumps over the lazy dog. Please turn on the lights."
    )
    assert transcript.language == "en"
    assert transcript.duration == 5.5
    assert (transcript.backend, transcript.model) == ("mlx", "m")
    first, second = transcript.segments
    assert (first.id, first.start, first.end, first.seek) == (0, 0.0, 2.62, 0)
    assert first.text == "The quick brown fox jumps over the lazy dog."
    assert first.avg_logprob == -0.2142 and first.no_speech_prob == 0.0118
    assert first.tokens[:2] == (50364, 440)
    assert [w.word for w in first.words] == [" The", " quick"]
    assert first.words[1].probability == 0.99
    assert (second.id, second.seek, second.text) == (1, 262, "Please turn on the lights.")


def test_it_drops_the_backends_speaker_labels() -> None:
    transcript = normalize(MLX_PAYLOAD)
    assert [s.speaker for s in transcript.segments] == [None, None]


def test_it_fills_missing_ids_and_times_and_skips_empty_segments() -> None:
    transcript = normalize(
        {
            "text": "one two three",
            "segments": [
                {"text": " one", "start": 1.5},  # no id, no end
                {"text": "   ", "start": 2.0, "end": 3.0},  # blank: skipped, index still used
                {"text": "two", "start": 4.0, "end": 0},  # end 0 falls back to start
                "not a segment",
                {"id": 9, "text": "three", "end": 7.5},  # no start
                {"id": True, "text": "four", "start": math.nan, "end": math.inf},
            ],
        }
    )
    assert [(s.id, s.start, s.end, s.text) for s in transcript.segments] == [
        (0, 1.5, 1.5, "one"),
        (2, 4.0, 4.0, "two"),
        (9, 0.0, 7.5, "three"),
        (5, 0.0, 0.0, "four"),
    ]
    assert transcript.text == "one two three"


def test_it_makes_one_segment_when_there_is_text_but_no_segments() -> None:
    transcript = normalize({"text": "  Hello there.  ", "segments": []})
    assert transcript.text == "Hello there."
    assert [(s.id, s.start, s.end, s.text) for s in transcript.segments] == [
        (0, 0.0, 0.0, "Hello there.")
    ]


def test_it_keeps_only_string_languages() -> None:
    assert normalize({"text": "x", "language": 7}).language is None
    assert normalize({"text": "x", "language": ""}).language is None
    assert normalize({"text": "x", "language": "de"}).language == "de"


def test_an_empty_payload_is_an_empty_transcript_that_still_renders() -> None:
    transcript = normalize({})
    assert (transcript.text, transcript.segments, transcript.language) == ("", (), None)
    body = json.loads(render(transcript, "verbose_json").body)
    assert (body["text"], body["segments"], body["duration"]) == ("", [], 5.5)


@pytest.mark.skipif(is_apple_silicon(), reason="mlx can run on this machine")
def test_it_says_why_it_is_unavailable_off_apple_silicon() -> None:
    engine = MlxBackend(make_config().stt.mlx)
    (problem,) = engine.check()
    assert "Apple Silicon" in problem
    assert "Linux" in problem or "Darwin" in problem
    assert engine.status().state == "unavailable"
    with pytest.raises(BackendUnavailable, match="Apple Silicon"):
        engine.transcribe(audio.Audio(np.zeros(1600, dtype=np.float32)), TranscriptionRequest())


def test_on_apple_silicon_without_the_package_it_says_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mlx, "is_apple_silicon", lambda: True)
    monkeypatch.setitem(sys.modules, "mlx_whisper", None)  # makes find_spec answer None
    assert MlxBackend(make_config().stt.mlx).check() == [
        "mlx-whisper is not installed. Install the project dependencies first."
    ]


def test_local_model_paths_are_not_shown_to_clients() -> None:
    config = make_config(VOXHELM_MLX_MODEL="/srv/models/whisper-small-mlx").stt.mlx
    assert MlxBackend(config).model == "whisper-small-mlx"
    assert MlxBackend(make_config().stt.mlx).model == "mlx-community/whisper-large-v3-mlx"


# -- the call into mlx_whisper (stand-in module; no Apple Silicon here) ---------------------

Calls = list[dict[str, Any]]


@pytest.fixture
def fake_mlx(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Calls]:
    """Install a stand-in ``mlx_whisper`` that records its calls and returns ``result``."""

    def install(result: Any) -> Calls:
        calls: Calls = []

        def transcribe(audio: Any, **kwargs: Any) -> Any:
            calls.append({"audio": audio, **kwargs})
            if isinstance(result, Exception):
                raise result
            return result

        module = types.ModuleType("mlx_whisper")
        module.__spec__ = importlib.machinery.ModuleSpec("mlx_whisper", None)
        module.transcribe = transcribe  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "mlx_whisper", module)
        monkeypatch.setattr(mlx, "is_apple_silicon", lambda: True)
        return calls

    return install


@pytest.fixture(scope="module")
def speech() -> audio.Audio:
    return audio.decode(synthesize("Please turn on the kitchen lights.").wav_bytes())


def test_the_registry_hands_the_samples_and_options_to_mlx_whisper(
    fake_mlx: Callable[[Any], Calls], speech: audio.Audio
) -> None:
    calls = fake_mlx(MLX_PAYLOAD)
    stt = make_config(VOXHELM_STT_BACKEND="mlx").stt
    request = TranscriptionRequest(language="en", prompt="Kitchen, lights.")
    transcript = Engines().transcribe(speech, "whisper-1", request, stt)
    (call,) = calls
    assert call.pop("audio") is speech.samples
    assert speech.samples.dtype == "float32" and speech.sample_rate == 16000
    assert call == {
        "path_or_hf_repo": "mlx-community/whisper-large-v3-mlx",
        "initial_prompt": "Kitchen, lights.",
        "language": "en",
        "word_timestamps": False,
        "condition_on_previous_text": False,
        "task": "transcribe",
    }
    assert transcript.backend == "mlx"
    assert transcript.model == "mlx-community/whisper-large-v3-mlx"
    assert transcript.duration == pytest.approx(speech.duration)
    assert transcript.segments[1].text == "Please turn on the lights."


def test_it_passes_the_configured_conditioning_and_request_options(
    fake_mlx: Callable[[Any], Calls], speech: audio.Audio
) -> None:
    calls = fake_mlx(MLX_PAYLOAD)
    config = make_config(
        VOXHELM_MLX_MODEL="mlx-community/whisper-small-mlx",
        VOXHELM_MLX_CONDITION_ON_PREVIOUS_TEXT="true",
    ).stt.mlx
    request = TranscriptionRequest(word_timestamps=True, task="translate", temperature=0.4)
    MlxBackend(config).transcribe(speech, request)
    (call,) = calls
    assert call["path_or_hf_repo"] == "mlx-community/whisper-small-mlx"
    assert call["condition_on_previous_text"] is True
    assert call["word_timestamps"] is True
    assert call["task"] == "translate"
    assert call["temperature"] == 0.4
    assert call["language"] is None and call["initial_prompt"] is None


@pytest.mark.parametrize("result", [RuntimeError("metal ran out of memory"), ["not", "a dict"]])
def test_engine_errors_become_transcription_failures(
    fake_mlx: Callable[[Any], Calls], speech: audio.Audio, result: Any
) -> None:
    fake_mlx(result)
    with pytest.raises(TranscriptionFailed, match="mlx-whisper"):
        MlxBackend(make_config().stt.mlx).transcribe(speech, TranscriptionRequest())

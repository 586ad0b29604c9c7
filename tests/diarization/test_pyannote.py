"""The guarded pyannote adapter, up to the pipeline call.

pyannote.audio pulls in torch (gigabytes) and its pretrained pipelines are gated downloads
from a model hub this machine cannot reach, so neither is installed here. The tests replace
the two modules at the import boundary (``pyannote.audio`` with a recording ``Pipeline``,
``torch`` with the four functions the adapter uses) and check everything the adapter does
around them: token, extra, loading, device choice, the waveform it passes, hints, results.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_config
from voxhelm.audio import Audio
from voxhelm.diarization.base import DiarizationError, DiarizationUnavailable, SpeakerHints, Turn
from voxhelm.diarization.pyannote import (
    LOAD_FAILED,
    MISSING_TOKEN_MESSAGE,
    NO_EXTRA,
    UNEXPECTED_RESULT,
    PyannoteDiarizer,
    read_turns,
    resolve_device,
)
from voxhelm.diarization.registry import NOT_CONFIGURED, diarizer


@dataclass
class FakeSegment:
    start: float
    end: float


@dataclass
class FakeAnnotation:
    tracks: list[tuple[float, float, Any]]

    def itertracks(self, yield_label: bool = False) -> Iterator[tuple[FakeSegment, str, Any]]:
        assert yield_label
        for index, (start, end, label) in enumerate(self.tracks):
            yield FakeSegment(start, end), f"t{index}", label


@dataclass
class FakePipeline:
    result: Any
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    device: Any = None

    def to(self, device: Any) -> FakePipeline:
        self.device = device
        return self

    def __call__(self, audio: dict[str, Any], **hints: Any) -> Any:
        self.calls.append((audio, hints))
        return self.result


class FakeTorch(types.ModuleType):
    """torch as far as the adapter uses it: device probes, ``device``, ``from_numpy``."""

    def __init__(self, *, cuda: bool = False, mps: bool = False) -> None:
        super().__init__("torch")
        self.cuda = types.SimpleNamespace(is_available=lambda: cuda)
        self.backends = types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: mps))
        self.device = lambda name: ("device", name)
        self.from_numpy = lambda array: array


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Installs fake ``pyannote.audio`` and ``torch``; records ``from_pretrained`` calls."""
    state: dict[str, Any] = {
        "calls": [],
        "pipeline": FakePipeline(FakeAnnotation([(0.5, 2.0, "SPEAKER_01"), (2.0, 3.0, 7)])),
        "old_keyword": False,
        "error": None,
    }

    class Pipeline:
        @staticmethod
        def from_pretrained(model: str, **kwargs: Any) -> Any:
            state["calls"].append((model, kwargs))
            if state["error"] is not None:
                raise state["error"]
            if state["old_keyword"] and "token" in kwargs:
                raise TypeError("unexpected keyword argument 'token'")
            return state["pipeline"]

    audio_module = types.ModuleType("pyannote.audio")
    audio_module.Pipeline = Pipeline  # type: ignore[attr-defined]
    package = types.ModuleType("pyannote")
    package.audio = audio_module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyannote", package)
    monkeypatch.setitem(sys.modules, "pyannote.audio", audio_module)
    monkeypatch.setitem(sys.modules, "torch", FakeTorch(cuda=True))
    return state


def speech() -> Audio:
    return Audio(np.linspace(-0.5, 0.5, 16000 * 3, dtype=np.float32))


def test_it_passes_the_waveform_and_the_hints_to_the_pipeline(hub: dict[str, Any]) -> None:
    engine = PyannoteDiarizer("pyannote/speaker-diarization-3.1", "hf_secret", "auto")
    turns = engine.diarize(speech(), SpeakerHints(min_speakers=2, max_speakers=4))
    assert turns == [Turn(0.5, 2.0, "SPEAKER_01"), Turn(2.0, 3.0, "7")]
    assert hub["calls"] == [("pyannote/speaker-diarization-3.1", {"token": "hf_secret"})]
    pipeline = hub["pipeline"]
    assert pipeline.device == ("device", "cuda")  # auto: no MPS here, CUDA next
    ((audio, hints),) = pipeline.calls
    assert hints == {"min_speakers": 2, "max_speakers": 4}
    assert audio["sample_rate"] == 16000
    assert audio["waveform"].shape == (1, 48000)
    assert audio["waveform"].dtype == np.float32
    engine.diarize(speech(), SpeakerHints(num_speakers=3))
    assert len(hub["calls"]) == 1  # loaded once
    assert pipeline.calls[-1][1] == {"num_speakers": 3}


def test_it_retries_with_the_old_keyword_of_pyannote_3(hub: dict[str, Any]) -> None:
    hub["old_keyword"] = True
    PyannoteDiarizer("m", "tok", "cpu").diarize(speech(), SpeakerHints())
    assert [kwargs for _model, kwargs in hub["calls"]] == [
        {"token": "tok"},
        {"use_auth_token": "tok"},
    ]


def test_it_requires_a_token_before_anything_else(hub: dict[str, Any]) -> None:
    with pytest.raises(DiarizationUnavailable, match=MISSING_TOKEN_MESSAGE):
        PyannoteDiarizer("m", "", "auto").diarize(speech(), SpeakerHints())
    assert hub["calls"] == []


def test_it_explains_a_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyannote.audio", None)  # import fails
    with pytest.raises(DiarizationUnavailable) as caught:
        PyannoteDiarizer("m", "tok").diarize(speech(), SpeakerHints())
    assert caught.value.message == NO_EXTRA
    assert "uv sync --extra diarization" in NO_EXTRA


def test_a_gated_model_is_a_clear_error_without_hub_details(
    hub: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    hub["error"] = RuntimeError("401 Client Error for url https://hub.example/gated (token hf_x)")
    with pytest.raises(DiarizationUnavailable) as caught:
        PyannoteDiarizer("pyannote/speaker-diarization-3.1", "hf_x").diarize(
            speech(), SpeakerHints()
        )
    assert caught.value.message == LOAD_FAILED
    assert "http" not in caught.value.message
    assert "accepted the terms" in caught.value.message
    assert "gated" in caplog.text  # the details are in the server log


def test_a_none_pipeline_is_an_error(hub: dict[str, Any]) -> None:
    hub["pipeline"] = None
    with pytest.raises(DiarizationUnavailable, match="could not be loaded"):
        PyannoteDiarizer("m", "tok").diarize(speech(), SpeakerHints())


def test_a_failing_pipeline_fails_without_leaking_its_message(hub: dict[str, Any]) -> None:
    class Broken(FakePipeline):
        def __call__(self, audio: dict[str, Any], **hints: Any) -> Any:
            raise RuntimeError("CUDA out of memory at /srv/secret/path")

    hub["pipeline"] = Broken(None)
    with pytest.raises(DiarizationError) as caught:
        PyannoteDiarizer("m", "tok").diarize(speech(), SpeakerHints())
    assert "/srv" not in caught.value.message


@pytest.mark.parametrize(
    ("requested", "cuda", "mps", "expected"),
    [
        ("auto", True, True, "mps"),
        ("auto", True, False, "cuda"),
        ("auto", False, False, "cpu"),
        ("", False, False, "cpu"),
        ("CPU", True, True, "cpu"),
        ("cuda", True, False, "cuda"),
    ],
)
def test_it_resolves_the_device(requested: str, cuda: bool, mps: bool, expected: str) -> None:
    assert resolve_device(requested, FakeTorch(cuda=cuda, mps=mps)) == expected


def test_it_refuses_an_unavailable_or_unknown_device() -> None:
    with pytest.raises(DiarizationUnavailable, match="pyannote device 'mps' is not available"):
        resolve_device("mps", FakeTorch())
    with pytest.raises(DiarizationUnavailable, match="Unsupported pyannote device 'tpu'"):
        resolve_device("tpu", FakeTorch())


def test_it_reads_pyannote_4_wrappers() -> None:
    annotation = FakeAnnotation([(1.0, 2.0, "A")])
    assert read_turns(types.SimpleNamespace(speaker_diarization=annotation)) == [
        Turn(1.0, 2.0, "A")
    ]
    assert read_turns(types.SimpleNamespace(exclusive_speaker_diarization=annotation)) == [
        Turn(1.0, 2.0, "A")
    ]
    with pytest.raises(DiarizationError, match=UNEXPECTED_RESULT):
        read_turns(object())


def test_check_names_the_missing_token_and_extra() -> None:
    problems = PyannoteDiarizer("m", "").check()
    assert any("VOXHELM_HUGGINGFACE_TOKEN" in p for p in problems)
    assert any("--extra diarization" in p for p in problems)


def test_the_registry_builds_the_configured_engine_once(tmp_path: Any) -> None:
    config = make_config(
        tmp_path, VOXHELM_DIARIZATION_BACKEND="pyannote", VOXHELM_HUGGINGFACE_TOKEN="a"
    )
    engine = diarizer(config.diarization)
    assert isinstance(engine, PyannoteDiarizer)
    assert engine.token == "a" and engine.device == "auto"
    assert diarizer(config.diarization) is engine
    assert diarizer(make_config(tmp_path).diarization).name == "onnx"  # the default
    with pytest.raises(DiarizationUnavailable, match=NOT_CONFIGURED):
        diarizer(make_config(tmp_path, VOXHELM_DIARIZATION_BACKEND="none").diarization)


def test_the_system_check_warns_about_an_unusable_backend(tmp_path: Any) -> None:
    from voxhelm.checks import diarization_messages

    broken = make_config(tmp_path, VOXHELM_DIARIZATION_BACKEND="pyannote")
    messages = diarization_messages(broken)
    assert {m.id for m in messages} == {"voxhelm.W004"}
    assert any("VOXHELM_HUGGINGFACE_TOKEN" in m.msg for m in messages)
    assert diarization_messages(make_config(tmp_path)) == []  # onnx ships its models
    assert diarization_messages(make_config(tmp_path, VOXHELM_DIARIZATION_BACKEND="none")) == []

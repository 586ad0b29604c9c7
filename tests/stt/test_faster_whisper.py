"""The faster-whisper engine with the bundled tiny.en model, on real Piper speech."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_config
from tests.speech import BOOK, passage, word_error_rate
from voxhelm import audio
from voxhelm.errors import InvalidInput
from voxhelm.modelcache.layout import MANIFEST
from voxhelm.stt import windows
from voxhelm.stt.base import (
    BackendUnavailable,
    EngineState,
    ModelNotInstalled,
    TranscriptionRequest,
)
from voxhelm.stt.faster_whisper import (
    FasterWhisperBackend,
    bundled_model_path,
    public_model_name,
)
from voxhelm.stt.registry import Engines, Invocation, validate_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperBackend:
    config = make_config().stt
    return FasterWhisperBackend(config.fasterwhisper, tmp_path_factory.mktemp("models"))


def test_it_uses_the_bundled_model_by_default(engine: FasterWhisperBackend) -> None:
    bundled = bundled_model_path()
    assert bundled is not None and (bundled / "model.bin").is_file()
    assert engine.model_source() == str(bundled)
    assert engine.model == "tiny.en"
    assert engine.device() == "cpu"
    assert engine.compute_type("cpu") == "int8"
    assert engine.compute_type("cuda") == "float16"


def test_it_transcribes_real_speech(engine: FasterWhisperBackend) -> None:
    speech = passage()
    decoded = audio.decode(speech.wav_bytes())
    transcript = engine.transcribe(decoded, TranscriptionRequest(word_timestamps=True))
    assert engine.status().state == EngineState.READY
    assert transcript.language == "en"
    assert transcript.backend == "fasterwhisper"
    assert transcript.model == "tiny.en"
    assert word_error_rate(speech.text, transcript.text) <= 0.10
    assert transcript.segments[0].avg_logprob is not None
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= len(speech.text.split()) - 2
    assert all(w.end >= w.start for w in words)
    # Clean speech gives loop repair nothing to do.
    assert [s.flags for s in transcript.segments] == [()] * len(transcript.segments)
    assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))


def test_it_returns_nothing_for_silence(engine: FasterWhisperBackend) -> None:
    silence = audio.Audio(np.zeros(16000 * 2, dtype=np.float32))
    transcript = engine.transcribe(silence, TranscriptionRequest())
    assert len(transcript.text.split()) <= 2


def test_it_refuses_other_languages_on_an_english_only_model(
    engine: FasterWhisperBackend,
) -> None:
    # faster-whisper itself would quietly transcribe as English.
    with pytest.raises(InvalidInput) as caught:
        engine.transcribe(audio.decode(passage().wav_bytes()), TranscriptionRequest(language="de"))
    assert caught.value.message == (
        "Model tiny.en is English-only; use a multilingual model such as base for language 'de'."
    )
    assert (caught.value.param, caught.value.code) == ("language", "unsupported_language")
    english = engine.transcribe(
        audio.decode(passage().wav_bytes()), TranscriptionRequest(language="en")
    )
    assert english.language == "en"


def test_it_refuses_to_translate_with_an_english_only_model(
    engine: FasterWhisperBackend,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        engine.transcribe(
            audio.decode(passage().wav_bytes()), TranscriptionRequest(task="translate")
        )
    assert "tiny.en is English-only and cannot translate" in caught.value.message
    assert (caught.value.param, caught.value.code) == ("model", "unsupported_task")


def test_the_name_base_means_the_packaged_multilingual_model(tmp_path: Path) -> None:
    config = make_config().stt
    engine = FasterWhisperBackend(replace(config.fasterwhisper, model="base"), tmp_path)
    assert engine.uses_packaged_base()
    assert engine.model_source() == str(tmp_path / "whisper-base-ct2")
    assert engine.model == "base"


def test_it_is_unavailable_when_a_model_directory_is_missing(tmp_path: Path) -> None:
    config = make_config().stt
    engine = FasterWhisperBackend(
        replace(config.fasterwhisper, model=str(tmp_path / "nope")), tmp_path
    )
    assert engine.status().state == EngineState.UNAVAILABLE
    assert str(tmp_path) not in (engine.status().reason or "")
    with pytest.raises(BackendUnavailable):
        engine.transcribe(audio.Audio(np.zeros(160, dtype=np.float32)), TranscriptionRequest())


def test_a_model_name_that_is_not_installed_is_never_downloaded(tmp_path: Path) -> None:
    config = make_config().stt
    engine = FasterWhisperBackend(replace(config.fasterwhisper, model="small"), tmp_path)
    with pytest.raises(ModelNotInstalled) as caught:
        engine.model_source()
    assert str(caught.value).endswith("Install it with: voxhelm models pull small")
    assert engine.status().state == EngineState.UNAVAILABLE
    assert engine.model == "small"
    assert list(tmp_path.iterdir()) == []


def test_a_pulled_model_loads_from_the_model_cache(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    assert bundled is not None
    folder = tmp_path / "fasterwhisper" / "org--whisper"
    shutil.copytree(bundled, folder)
    (folder / MANIFEST).write_text(json.dumps({"name": "org/whisper"}))
    config = make_config().stt
    engine = FasterWhisperBackend(replace(config.fasterwhisper, model="org/whisper"), tmp_path)
    assert engine.model_source() == str(folder)
    assert engine.model == "org/whisper"  # a repository id is a name, not a path
    assert (folder / ".last-used").is_file()  # the console's "last use"
    (folder / MANIFEST).unlink()  # a folder without its manifest is no model
    with pytest.raises(ModelNotInstalled):
        engine.model_source()


def test_a_requested_name_is_never_a_folder_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the configuration may name a model folder: a request naming a directory that
    happens to exist relative to the working directory ("small", "org/whisper") gets the
    model of that name (pulled), never the folder (any directory the server can read)."""
    bundled = bundled_model_path()
    assert bundled is not None
    monkeypatch.chdir(tmp_path)
    shutil.copytree(bundled, tmp_path / "small")
    shutil.copytree(bundled, tmp_path / "org" / "whisper")
    cache = tmp_path / "cache"
    pulled: list[str] = []

    def puller(name: str, cache_dir: Path) -> Path:
        pulled.append(name)
        return cache_dir / "pulled" / name

    engines = Engines()
    engines.pull_with(puller)
    stt = make_config(
        tmp_path, VOXHELM_MODEL_AUTO_PULL="true", VOXHELM_MODEL_CACHE_DIR=str(cache)
    ).stt
    assert validate_model("small", stt) == "small"
    engine = engines.get(Invocation("fasterwhisper", "small"), stt)
    assert isinstance(engine, FasterWhisperBackend)
    assert engine.model_source() == str(cache / "pulled" / "small")
    assert pulled == ["small"]
    # A repository id outside the catalogue is neither pulled nor taken from the folder.
    engine = engines.get(Invocation("fasterwhisper", "org/whisper"), stt)
    assert isinstance(engine, FasterWhisperBackend)
    assert engine.model == "org/whisper"
    with pytest.raises(ModelNotInstalled):
        engine.model_source()
    assert pulled == ["small"]
    without_pull = replace(stt, model_auto_pull=False)
    with pytest.raises(InvalidInput) as caught:
        validate_model("small", without_pull)
    assert caught.value.code == "model_not_installed"
    # The operator's configuration may name the folder, relative or not.
    configured = make_config(tmp_path, VOXHELM_FASTERWHISPER_MODEL="small").stt
    engine = Engines().get(Invocation("fasterwhisper", "small"), configured)
    assert isinstance(engine, FasterWhisperBackend)
    assert engine.model_source() == "small"


def test_public_names_never_show_paths() -> None:
    assert public_model_name("") == "tiny.en"
    assert public_model_name("/models/whisper-small-ct2") == "whisper-small-ct2"
    assert public_model_name("large-v3") == "large-v3"


def test_it_reports_each_segment_as_it_is_decoded(engine: FasterWhisperBackend) -> None:
    decoded = audio.decode(passage().wav_bytes())
    seen: list[float] = []
    transcript = engine.transcribe(
        decoded, TranscriptionRequest(on_segment=lambda s: seen.append(s.end) is None)
    )
    assert seen and seen == sorted(seen)
    assert seen[-1] == pytest.approx(transcript.segments[-1].end, abs=1.0)


def test_the_segment_hook_can_stop_the_engine(engine: FasterWhisperBackend) -> None:
    from voxhelm.stt.base import TranscriptionCanceled

    decoded = audio.decode(passage().wav_bytes())
    calls: list[int] = []

    def stop(segment: object) -> bool:
        calls.append(1)
        return False

    with pytest.raises(TranscriptionCanceled):
        engine.transcribe(decoded, TranscriptionRequest(on_segment=stop))
    assert calls == [1]


def test_windows_decoded_in_one_batch_keep_every_sentence(tmp_path: Path) -> None:
    config = make_config().stt
    engine = FasterWhisperBackend(replace(config.fasterwhisper, batch_size=8), tmp_path)
    speech = passage(BOOK + BOOK[:4])
    decoded = audio.decode(speech.wav_bytes())
    bounds = windows.window_bounds(decoded, 29.0, tail_seconds=1.0)
    assert len(bounds) >= 3 and all(end - start <= 30 * 16000 for start, end in bounds)
    assert engine.window_batch() == 8 and engine.only_language() == "en"
    request = TranscriptionRequest(word_timestamps=True)
    transcript = engine.transcribe_windows(decoded, bounds, request)
    # A window's last sentence is there too: each window is decoded in 30 s of its own,
    # silence after it (padded otherwise, Whisper takes the sentence for cut off).
    assert word_error_rate(speech.text, transcript.text) <= 0.10
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and starts[-1] > bounds[-1][0] / 16000
    assert len(transcript.segments) >= len(BOOK)  # a sentence or so each, not one per window
    assert all(s.words for s in transcript.segments)
    assert transcript.duration == pytest.approx(decoded.duration)

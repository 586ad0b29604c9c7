"""Aliases, model validation and fallback: the reference's rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_config
from voxhelm.audio import Audio
from voxhelm.config import is_apple_silicon
from voxhelm.errors import InvalidInput, ServiceUnavailable
from voxhelm.stt.base import (
    Backend,
    BackendUnavailable,
    ModelNotInstalled,
    ModelPuller,
    TranscriptionFailed,
    TranscriptionRequest,
)
from voxhelm.stt.registry import (
    DIARIZE_ALIAS,
    Engines,
    Invocation,
    accepted_models,
    resolve,
    validate_model,
)
from voxhelm.transcript import Transcript

SILENCE = Audio(np.zeros(1600, dtype=np.float32))


@pytest.mark.parametrize("alias", ["auto", "whisper-1", "gpt-4o-mini-transcribe"])
def test_aliases_resolve_to_the_configured_backend_and_model(alias: str) -> None:
    stt = make_config().stt
    assert resolve(alias, stt) == [Invocation("fasterwhisper", "tiny.en")]


def test_aliases_add_the_fallback_backend() -> None:
    stt = make_config(VOXHELM_STT_FALLBACK_BACKEND="mlx").stt
    assert resolve("whisper-1", stt) == [
        Invocation("fasterwhisper", "tiny.en"),
        Invocation("mlx", "mlx-community/whisper-large-v3-mlx"),
    ]


def test_explicit_models_get_no_fallback() -> None:
    stt = make_config(VOXHELM_STT_FALLBACK_BACKEND="mlx").stt
    assert resolve("tiny.en", stt) == [Invocation("fasterwhisper", "tiny.en")]
    assert resolve("ggml-large-v3.bin", stt) == [Invocation("whispercpp", "ggml-large-v3.bin")]


def test_a_fallback_equal_to_the_primary_is_not_added() -> None:
    stt = make_config(VOXHELM_STT_FALLBACK_BACKEND="fasterwhisper").stt
    assert len(resolve("auto", stt)) == 1


def test_whisperkit_names_are_accepted_only_when_enabled() -> None:
    assert "whisperkit" not in accepted_models(make_config().stt)
    enabled = make_config(VOXHELM_WHISPERKIT_ENABLED="true").stt
    assert {"whisperkit", "large-v3-v20240930"} <= set(accepted_models(enabled))
    assert resolve("whisperkit", enabled) == [Invocation("whisperkit", "large-v3-v20240930")]


def test_unknown_models_are_refused_with_the_accepted_list() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_model("davinci", make_config().stt)
    assert caught.value.message.startswith("Unsupported model 'davinci'. Accepted values: ")
    assert "whisper-1" in caught.value.message
    assert caught.value.param == "model"


class FakeBackend(Backend):
    """Stands in for an engine: which engine runs is what these tests are about."""

    name = "fake"

    def __init__(self, model: str, outcome: Exception | None) -> None:
        super().__init__(model)
        self.outcome = outcome
        self.calls = 0

    def transcribe(self, audio: Audio, request: TranscriptionRequest) -> Transcript:
        self.calls += 1
        if self.outcome is not None:
            raise self.outcome
        return Transcript.from_segments([], language="en", duration=0.1, model=self.model)


def engines_with(outcomes: dict[str, Exception | None]) -> tuple[Engines, dict[str, FakeBackend]]:
    built: dict[str, FakeBackend] = {}

    def factory(name: str, model: str, config: object, pull: object) -> Backend:
        built[name] = FakeBackend(model, outcomes[name])
        return built[name]

    return Engines(factory), built


def test_fallback_runs_only_when_the_primary_is_unavailable() -> None:
    stt = make_config(VOXHELM_STT_FALLBACK_BACKEND="mlx").stt
    engines, built = engines_with({"fasterwhisper": BackendUnavailable("gone"), "mlx": None})
    result = engines.transcribe(SILENCE, "whisper-1", TranscriptionRequest(), stt)
    assert result.model == "mlx-community/whisper-large-v3-mlx"
    assert built["fasterwhisper"].calls == 1


def test_a_failing_primary_is_not_retried_on_the_fallback() -> None:
    stt = make_config(VOXHELM_STT_FALLBACK_BACKEND="mlx").stt
    engines, built = engines_with({"fasterwhisper": TranscriptionFailed("boom"), "mlx": None})
    with pytest.raises(TranscriptionFailed):
        engines.transcribe(SILENCE, "whisper-1", TranscriptionRequest(), stt)
    assert "mlx" not in built


def test_all_unavailable_is_a_service_unavailable_error_without_details() -> None:
    stt = make_config(VOXHELM_STT_FALLBACK_BACKEND="mlx").stt
    engines, _ = engines_with(
        {"fasterwhisper": BackendUnavailable("/secret/path"), "mlx": BackendUnavailable("x")}
    )
    with pytest.raises(ServiceUnavailable) as caught:
        engines.transcribe(SILENCE, "auto", TranscriptionRequest(), stt)
    assert caught.value.message == "No configured STT backend is available."
    assert "/secret" not in caught.value.message


@pytest.mark.skipif(is_apple_silicon(), reason="the primary must be an engine that cannot run")
def test_a_request_is_refused_by_the_engine_that_would_serve_it_before_any_audio() -> None:
    # mlx cannot run on this machine (its check says why), so the fallback would serve
    # the alias: the bundled English-only model, which refuses German but takes English.
    stt = make_config(VOXHELM_STT_BACKEND="mlx", VOXHELM_STT_FALLBACK_BACKEND="fasterwhisper").stt
    engines = Engines()
    with pytest.raises(InvalidInput) as caught:
        engines.refuse_unsupported("auto", TranscriptionRequest(language="de"), stt)
    assert (caught.value.code, caught.value.param) == ("unsupported_language", "language")
    assert "tiny.en" in caught.value.message
    engines.refuse_unsupported("auto", TranscriptionRequest(language="en"), stt)
    engines.refuse_unsupported("auto", TranscriptionRequest(), stt)
    # With no engine that can run, the transcription itself reports it (a 503), not this.
    alone = make_config(VOXHELM_STT_BACKEND="mlx").stt
    engines.refuse_unsupported("auto", TranscriptionRequest(language="de"), alone)


def test_backends_are_built_once_per_model() -> None:
    stt = make_config().stt
    engines, _ = engines_with({"fasterwhisper": None})
    first = engines.get(Invocation("fasterwhisper", "tiny.en"), stt)
    assert engines.get(Invocation("fasterwhisper", "tiny.en"), stt) is first


def test_a_model_the_store_could_pull_is_refused_with_the_pull_command(tmp_path: Path) -> None:
    stt = make_config(tmp_path).stt
    for model in ("small", "Systran/faster-whisper-large-v3", "ggml-large-v3.bin"):
        with pytest.raises(InvalidInput) as caught:
            validate_model(model, stt)
        assert caught.value.code == "model_not_installed"
        assert caught.value.param == "model"
        assert caught.value.message.endswith(f"install it with: voxhelm models pull {model}")
    assert validate_model("tiny.en", stt) == "tiny.en"  # bundled: installed


def test_with_auto_pull_a_pullable_model_is_accepted_and_routed_to_its_engine(
    tmp_path: Path,
) -> None:
    stt = make_config(tmp_path, VOXHELM_MODEL_AUTO_PULL="true").stt
    assert validate_model("small", stt) == "small"
    assert resolve("small", stt) == [Invocation("fasterwhisper", "small")]
    assert resolve("ggml-small.bin", stt) == [Invocation("whispercpp", "ggml-small.bin")]
    with pytest.raises(InvalidInput) as caught:
        validate_model("davinci", stt)
    assert caught.value.code == "model_not_found"


def test_with_auto_pull_a_request_pulls_only_the_catalogues_names(tmp_path: Path) -> None:
    """Any repository id would let a producer fill the disk with whatever the Hub holds:
    requests pull only known names and the configured models, repository ids are for
    operators (``voxhelm models pull``, the console)."""
    stt = make_config(tmp_path, VOXHELM_MODEL_AUTO_PULL="true").stt
    for model in ("Systran/faster-whisper-large-v3", "someone/anything", "ggml-custom.bin"):
        with pytest.raises(InvalidInput) as caught:
            validate_model(model, stt)
        assert caught.value.code == "model_not_installed"
        assert "Requests pull only the catalogue's models (tiny.en, tiny," in caught.value.message
        assert caught.value.message.endswith(f"install it with: voxhelm models pull {model}")
    assert validate_model("large-v3", stt) == "large-v3"
    assert validate_model("ggml-large-v3.bin", stt) == "ggml-large-v3.bin"
    operator = make_config(
        tmp_path,
        VOXHELM_MODEL_AUTO_PULL="true",
        VOXHELM_FASTERWHISPER_MODEL="Systran/faster-whisper-large-v3",
    ).stt
    assert validate_model("Systran/faster-whisper-large-v3", operator) == (
        "Systran/faster-whisper-large-v3"
    )


def test_an_engine_for_a_name_outside_the_catalogue_gets_no_pull(tmp_path: Path) -> None:
    given: dict[str, ModelPuller | None] = {}

    def factory(name: str, model: str, config: object, pull: ModelPuller | None) -> Backend:
        given[model] = pull
        return FakeBackend(model, None)

    engines = Engines(factory)
    on = make_config(tmp_path, VOXHELM_MODEL_AUTO_PULL="true").stt
    engines.get(Invocation("fasterwhisper", "someone/anything"), on)
    engines.get(Invocation("fasterwhisper", "small"), on)
    assert given["someone/anything"] is None
    assert given["small"] is not None


def test_engines_get_the_handed_pull_only_while_auto_pull_is_on(tmp_path: Path) -> None:
    """The engines sit below the model store: its pull reaches them only through the
    registry, and an engine built before the hand-over pulls with it too."""
    given: dict[bool, ModelPuller | None] = {}

    def factory(name: str, model: str, config: object, pull: ModelPuller | None) -> Backend:
        given[model == "small"] = pull
        return FakeBackend(model, None)

    engines = Engines(factory)
    engines.get(Invocation("fasterwhisper", "tiny.en"), make_config(tmp_path).stt)
    on = make_config(tmp_path, VOXHELM_MODEL_AUTO_PULL="true").stt
    engines.get(Invocation("fasterwhisper", "small"), on)
    assert given[False] is None
    pull = given[True]
    assert pull is not None
    with pytest.raises(ModelNotInstalled):  # nothing handed over yet
        pull("small", tmp_path)
    pulled: list[str] = []

    def puller(name: str, cache_dir: Path) -> Path:
        pulled.append(name)
        return cache_dir / name

    engines.pull_with(puller)
    assert pull("small", tmp_path) == tmp_path / "small"
    assert pulled == ["small"]


def test_the_diarizing_model_is_the_default_engine_for_a_request_that_labels_speakers() -> None:
    stt = make_config().stt
    assert resolve(DIARIZE_ALIAS, stt) == resolve("auto", stt)
    assert validate_model(DIARIZE_ALIAS, stt, diarizing=True) == DIARIZE_ALIAS
    # A translation, a job or the console would transcribe without the speakers it asks for.
    with pytest.raises(InvalidInput) as refused:
        validate_model(DIARIZE_ALIAS, stt)
    assert refused.value.code == "model_not_found"
    assert DIARIZE_ALIAS not in accepted_models(stt)

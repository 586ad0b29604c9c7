"""Wyoming settings (reference §5.2), the info event, and what a ``transcribe`` event asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_config
from voxhelm.wyoming_server.__main__ import build_service, default_uri
from voxhelm.wyoming_server.handler import MAX_PROMPT_CHARS, SttService, build_prompt
from voxhelm.wyoming_server.info import build_info, resolve_settings
from voxhelm.wyoming_server.protocol import ProtocolError
from voxhelm.wyoming_server.server import Endpoint, parse_uri


def service(tmp_path: Path, **env: str) -> SttService:
    config = make_config(tmp_path, **env)
    return SttService(config, resolve_settings(config))


def test_it_defaults_to_the_stt_backends_model_and_advertises_english(tmp_path: Path) -> None:
    settings = resolve_settings(make_config(tmp_path))
    assert (settings.backend, settings.model) == ("fasterwhisper", "tiny.en")
    assert (settings.language, settings.languages, settings.prompt) == (None, ("en",), None)


def test_the_wyoming_backend_picks_the_default_model(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        VOXHELM_WYOMING_STT_BACKEND="whispercpp",
        VOXHELM_WHISPERCPP_MODEL="ggml-base.bin",
    )
    settings = resolve_settings(config)
    assert (settings.backend, settings.model) == ("whispercpp", "ggml-base.bin")


def test_advertised_languages_fall_back_to_the_language(tmp_path: Path) -> None:
    # A whisper.cpp model does not say which languages it speaks (tiny.en would refuse de:
    # see test_languages.py).
    whispercpp = {
        "VOXHELM_WYOMING_STT_BACKEND": "whispercpp",
        "VOXHELM_WHISPERCPP_MODEL": "ggml-base.bin",
    }
    settings = resolve_settings(
        make_config(tmp_path, VOXHELM_WYOMING_STT_LANGUAGE="de-DE", **whispercpp)
    )
    assert (settings.language, settings.languages) == ("de", ("de-DE",))
    config = make_config(
        tmp_path,
        VOXHELM_WYOMING_STT_LANGUAGES="de,en,de",
        VOXHELM_WYOMING_STT_LANGUAGE="de",
        **whispercpp,
    )
    listed = resolve_settings(config)
    assert listed.languages == ("de", "en")


def test_it_refuses_to_start_with_an_unknown_language(tmp_path: Path) -> None:
    from voxhelm.config import ConfigError

    with pytest.raises(ConfigError, match="VOXHELM_WYOMING_STT_LANGUAGE"):
        build_service(make_config(tmp_path, VOXHELM_WYOMING_STT_LANGUAGE="klingon"))


def test_the_info_event_has_a_hook_for_tts_voices(tmp_path: Path) -> None:
    from wyoming.info import Attribution, TtsProgram

    tts = TtsProgram(
        name="voxhelm", description="Voxhelm Wyoming text-to-speech", installed=True,
        attribution=Attribution("Voxhelm", ""), version="1", voices=[],
    )  # fmt: skip
    info = build_info(resolve_settings(make_config(tmp_path)), [tts])
    assert [p.name for p in info.asr] == ["voxhelm"]
    assert [p.description for p in info.tts] == ["Voxhelm Wyoming text-to-speech"]


def test_a_transcribe_event_sets_model_language_and_prompt(tmp_path: Path) -> None:
    stt = service(
        tmp_path, VOXHELM_WYOMING_STT_PROMPT="Smart home.", VOXHELM_WYOMING_STT_LANGUAGE="en"
    )
    command = stt.command(
        {
            "name": "whisper-1",
            "language": "de_DE",
            "transcript_names": ["Wintergarten", " ", 7],
            "context": {"transcript_terms": ["Szene", "Wintergarten"]},
        }
    )
    assert command.model == "whisper-1"
    assert command.request.language == "de"
    assert command.request.prompt == "Smart home. Wintergarten, Szene."


def test_unknown_models_and_languages_fall_back_to_the_defaults(tmp_path: Path) -> None:
    stt = service(tmp_path, VOXHELM_WYOMING_STT_LANGUAGE="en")
    command = stt.command({"name": "large-v3-from-the-internet", "language": "xx-YY"})
    assert command.model == "tiny.en"  # never a download triggered by a client
    assert command.request.language is None
    assert stt.command({}).request.language == "en"
    with pytest.raises(ProtocolError):
        stt.command({"language": ["en"]})


def test_the_prompt_stays_within_its_limit() -> None:
    prompt = build_prompt("Base.", [f"Name {i}" for i in range(500)])
    assert prompt is not None and len(prompt) <= MAX_PROMPT_CHARS
    assert prompt.startswith("Base. Name 0, Name 1,") and prompt.endswith(".")
    assert build_prompt(None, []) is None
    assert build_prompt("  ", ["a"]) == "a."


def test_it_parses_the_three_kinds_of_uri(tmp_path: Path) -> None:
    assert parse_uri("tcp://0.0.0.0:10300") == Endpoint("tcp", host="0.0.0.0", port=10300)
    assert str(parse_uri("tcp://[::1]:10300")) == "tcp://[::1]:10300"
    assert parse_uri("unix:///run/voxhelm.sock") == Endpoint("unix", path="/run/voxhelm.sock")
    assert parse_uri("stdio://") == Endpoint("stdio")
    for bad in ("http://x:1", "tcp://host", "unix://"):
        with pytest.raises(ValueError):
            parse_uri(bad)
    config = make_config(
        tmp_path, VOXHELM_WYOMING_STT_HOST="127.0.0.1", VOXHELM_WYOMING_STT_PORT="10555"
    )
    assert default_uri(config) == "tcp://127.0.0.1:10555"


def test_a_multilingual_model_advertises_every_language_it_knows(tmp_path: Path) -> None:
    settings = resolve_settings(make_config(tmp_path, VOXHELM_FASTERWHISPER_MODEL="base"))
    assert len(settings.languages) == 99  # Home Assistant then offers each of them
    assert settings.languages[:3] == ("en", "zh", "de")
    info = build_info(settings).asr[0].models[0]
    assert info.languages == list(settings.languages)

    german_first = resolve_settings(
        make_config(tmp_path, VOXHELM_FASTERWHISPER_MODEL="base", VOXHELM_WYOMING_STT_LANGUAGE="de")
    )
    assert german_first.languages[:3] == ("de", "en", "zh")
    assert len(german_first.languages) == 99
    listed = resolve_settings(
        make_config(
            tmp_path, VOXHELM_FASTERWHISPER_MODEL="base", VOXHELM_WYOMING_STT_LANGUAGES="de"
        )
    )
    assert listed.languages == ("de",)  # the operator's list wins

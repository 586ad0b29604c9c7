"""Voice discovery and resolution: the bundled voice, a voices folder, OpenAI names, languages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.tts.conftest import install_voice
from voxhelm import tts
from voxhelm.errors import InvalidInput, ServiceUnavailable
from voxhelm.tts.base import Voice
from voxhelm.tts.piper import PiperEngine
from voxhelm.tts.voices import OPENAI_VOICES, VoiceCatalog

BUNDLED = "en_US-joe-medium"


def catalog_for(tmp_path: Path, **env: str) -> VoiceCatalog:
    return tts.catalog(make_config(tmp_path, **env).tts)


def test_it_offers_the_bundled_voice_with_no_set_up(tmp_path: Path) -> None:
    catalog = catalog_for(tmp_path)
    (voice,) = catalog.voices
    assert voice.name == BUNDLED
    assert voice.language == "en_US"
    assert voice.languages == ("en", "en_US")
    assert voice.sample_rate == 22050
    assert voice.source == "bundled"
    assert voice.quality == "medium"
    assert catalog.default == voice


def test_it_adds_the_voices_of_the_voices_folder(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    install_voice(folder, "de_DE-test-medium")  # language from the name, as older configs
    install_voice(folder, "xx-multi", language="fr_FR", speakers={"zoe": 1, "adam": 0})
    (folder / "lonely.onnx").write_bytes(b"no config next to it")
    catalog = catalog_for(tmp_path, VOXHELM_TTS_VOICES_DIR=str(folder))
    assert catalog.names() == [BUNDLED, "de_DE-test-medium", "xx-multi"]
    german = catalog.get("de_DE-test-medium")
    assert german is not None and german.languages == ("de", "de_DE")
    assert german.source == "directory"
    multi = catalog.get("xx-multi")
    assert multi is not None and multi.language == "fr_FR" and multi.speakers == ("adam", "zoe")


def test_the_reference_folder_variable_still_works(tmp_path: Path) -> None:
    folder = tmp_path / "piper"
    install_voice(folder, "de_DE-test-medium")
    catalog = catalog_for(tmp_path, VOXHELM_PIPER_VOICE_DIR=str(folder))
    assert "de_DE-test-medium" in catalog.names()


def test_the_new_folder_variable_wins_over_the_reference_one(tmp_path: Path) -> None:
    install_voice(tmp_path / "new", "de_DE-new-medium")
    install_voice(tmp_path / "old", "de_DE-old-medium")
    config = make_config(
        tmp_path,
        VOXHELM_TTS_VOICES_DIR=str(tmp_path / "new"),
        VOXHELM_PIPER_VOICE_DIR=str(tmp_path / "old"),
    )
    assert config.tts.piper_voice_dir == tmp_path / "new"
    assert tts.catalog(config.tts).names() == [BUNDLED, "de_DE-new-medium"]


def test_it_offers_only_the_listed_folder_voices(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    install_voice(folder, "de_DE-a-medium")
    install_voice(folder, "de_DE-b-medium")
    catalog = catalog_for(
        tmp_path,
        VOXHELM_TTS_VOICES_DIR=str(folder),
        VOXHELM_PIPER_VOICES="de_DE-b-medium,de_DE-missing",
    )
    assert catalog.names() == [BUNDLED, "de_DE-b-medium"]


def test_it_sees_a_voice_copied_in_while_running(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    folder.mkdir()
    engine = PiperEngine(make_config(tmp_path, VOXHELM_TTS_VOICES_DIR=str(folder)).tts)
    assert [v.name for v in engine.voices()] == [BUNDLED]
    install_voice(folder, "de_DE-late-medium")
    # Some file systems keep mtimes in whole seconds: make the change visible regardless.
    stat = folder.stat()
    os.utime(folder, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert [v.name for v in engine.voices()] == [BUNDLED, "de_DE-late-medium"]


def test_it_skips_a_voice_whose_config_is_broken(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    install_voice(folder, "de_DE-good-medium")
    (folder / "bad.onnx").write_bytes(b"x")
    (folder / "bad.onnx.json").write_text("{not json", encoding="utf-8")
    assert catalog_for(tmp_path, VOXHELM_TTS_VOICES_DIR=str(folder)).names() == [
        BUNDLED,
        "de_DE-good-medium",
    ]


@pytest.fixture
def catalog(tmp_path: Path) -> VoiceCatalog:
    folder = tmp_path / "voices"
    install_voice(folder, "de_DE-thorsten-medium")
    install_voice(folder, "de_AT-hans-low")
    install_voice(folder, "en_GB-alba-medium")
    return catalog_for(
        tmp_path,
        VOXHELM_TTS_VOICES_DIR=str(folder),
        VOXHELM_PIPER_LANGUAGE_VOICES="de=de_DE-thorsten-medium,de-AT=de_AT-hans-low",
    )


def name_of(voice: Voice) -> str:
    return voice.name


def test_a_voice_name_selects_that_voice(catalog: VoiceCatalog) -> None:
    assert name_of(catalog.resolve("en_GB-alba-medium")) == "en_GB-alba-medium"
    assert name_of(catalog.resolve("EN_gb-Alba-Medium")) == "en_GB-alba-medium"
    # A named voice wins over the language.
    assert name_of(catalog.resolve("en_GB-alba-medium", "de")) == "en_GB-alba-medium"


@pytest.mark.parametrize("name", OPENAI_VOICES)
def test_openai_voice_names_select_the_default_voice(catalog: VoiceCatalog, name: str) -> None:
    assert name_of(catalog.resolve(name)) == BUNDLED
    assert name_of(catalog.resolve(name.upper())) == BUNDLED


def test_openai_voice_names_follow_the_language(catalog: VoiceCatalog) -> None:
    assert name_of(catalog.resolve("alloy", "de")) == "de_DE-thorsten-medium"
    assert name_of(catalog.resolve("nova", "de-AT")) == "de_AT-hans-low"


def test_the_language_map_matches_any_spelling_and_falls_back_to_the_family(
    catalog: VoiceCatalog,
) -> None:
    assert name_of(catalog.resolve(None, "de_at")) == "de_AT-hans-low"
    # de-CH has no entry: its family, de, has one (the reference found nothing here).
    assert name_of(catalog.resolve(None, "de-CH")) == "de_DE-thorsten-medium"


def test_a_language_without_a_map_entry_finds_a_voice_of_that_language(
    catalog: VoiceCatalog,
) -> None:
    assert name_of(catalog.resolve(None, "en-GB")) == "en_GB-alba-medium"
    assert name_of(catalog.resolve(None, "en")) == BUNDLED  # the default speaks en
    assert name_of(catalog.resolve(None, "ja")) == BUNDLED  # nothing fits: the default


def test_a_language_key_works_as_a_voice_as_in_the_reference(catalog: VoiceCatalog) -> None:
    assert name_of(catalog.resolve("de")) == "de_DE-thorsten-medium"


def test_an_unknown_voice_is_invalid_input_naming_the_voice(catalog: VoiceCatalog) -> None:
    with pytest.raises(InvalidInput) as caught:
        catalog.resolve("mary-poppins")
    assert caught.value.param == "voice"
    assert caught.value.code == "unknown_voice"
    assert "Unknown voice 'mary-poppins'" in caught.value.message
    assert BUNDLED in caught.value.message
    assert "/" not in caught.value.message  # no file paths


def test_the_configured_default_voice_is_used_when_none_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    install_voice(folder, "en_GB-alba-medium")
    catalog = catalog_for(
        tmp_path,
        VOXHELM_TTS_VOICES_DIR=str(folder),
        VOXHELM_PIPER_DEFAULT_VOICE="en_GB-alba-medium",
    )
    assert name_of(catalog.resolve(None)) == "en_GB-alba-medium"
    assert name_of(catalog.resolve("shimmer")) == "en_GB-alba-medium"
    assert catalog.aliases(catalog.voices[1]) == list(OPENAI_VOICES)
    assert catalog.aliases(catalog.voices[0]) == []


def test_a_missing_default_voice_falls_back_to_the_first(tmp_path: Path) -> None:
    catalog = catalog_for(tmp_path, VOXHELM_PIPER_DEFAULT_VOICE="nl_NL-missing-low")
    assert name_of(catalog.resolve(None)) == BUNDLED


def test_no_voice_at_all_is_service_unavailable(tmp_path: Path) -> None:
    config = make_config(tmp_path).tts
    empty = VoiceCatalog.build([], config)
    with pytest.raises(ServiceUnavailable):
        empty.resolve("alloy")


@pytest.mark.parametrize("model", tts.SPEECH_MODELS)
def test_every_speech_model_name_selects_piper(model: str) -> None:
    assert tts.validate_model(model) == "piper"


def test_an_unknown_model_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        tts.validate_model("whisper-1")
    assert caught.value.param == "model"
    assert "Accepted values: auto, gpt-4o-mini-tts, piper, tts-1, tts-1-hd." in caught.value.message


def test_a_configured_voice_that_is_missing_is_a_check_warning(tmp_path: Path) -> None:
    from voxhelm.checks import tts_messages

    assert tts_messages(make_config(tmp_path)) == []
    config = make_config(
        tmp_path,
        VOXHELM_PIPER_DEFAULT_VOICE="nl_NL-missing-low",
        VOXHELM_PIPER_LANGUAGE_VOICES=f"de=de_DE-gone-medium,en={BUNDLED}",
    )
    messages = tts_messages(config)
    assert [m.id for m in messages] == ["voxhelm.W003", "voxhelm.W003"]
    assert "'nl_NL-missing-low'" in messages[0].msg
    assert "'de_DE-gone-medium'" in messages[1].msg

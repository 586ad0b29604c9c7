"""Hotwords: ``VOXHELM_STT_HOTWORDS`` and per-request words reach the engines that take them.

tiny.en misspells made-up and uncommon names ("Voxhelm" comes out as "Boxellum",
"Quillboro and Zentrik" as "Quilboro and Zentric"); given as hotwords, it spells them right.
faster-whisper takes them as its ``hotwords`` option; whisper.cpp gets them as a
``Vocabulary: ...`` line in its prompt.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.speech import normalize_words, synthesize
from voxhelm import audio
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.faster_whisper import FasterWhisperBackend
from voxhelm.stt.registry import Engines, with_hotwords
from voxhelm.stt.whisper_cpp import PROMPT_CONTEXT_TOKENS, WhisperCppBackend

pytestmark = pytest.mark.slow

NAMED = "Please ask Voxhelm to transcribe the episode."
PLACES = "Send the recording to Quillboro and Zentrik tomorrow."
WHISPER_CPP = Path(sysconfig.get_path("scripts")) / "whisper-cpp"


def speech(text: str) -> audio.Audio:
    return audio.decode(synthesize(text).wav_bytes())


def test_faster_whisper_spells_a_hotword_it_would_miss(tmp_path: Path) -> None:
    engines = Engines()
    plain = engines.transcribe(
        speech(NAMED), "whisper-1", TranscriptionRequest(), make_config(tmp_path).stt
    )
    assert "voxhelm" not in normalize_words(plain.text)
    hinted = engines.transcribe(
        speech(NAMED),
        "whisper-1",
        TranscriptionRequest(hotwords=("Voxhelm",)),
        make_config(tmp_path).stt,
    )
    assert "Voxhelm" in hinted.text


def test_configured_hotwords_apply_to_every_request(tmp_path: Path) -> None:
    stt = make_config(tmp_path, VOXHELM_STT_HOTWORDS="Quillboro, Zentrik").stt
    assert stt.hotwords == ("Quillboro", "Zentrik")
    text = Engines().transcribe(speech(PLACES), "auto", TranscriptionRequest(), stt).text
    assert "Quillboro" in text
    assert "Zentrik" in text


def test_whisper_cpp_gets_the_hotwords_in_its_prompt(tmp_path: Path, ggml_tiny_en: Path) -> None:
    stt = make_config(
        tmp_path,
        VOXHELM_STT_BACKEND="whispercpp",
        VOXHELM_WHISPERCPP_BIN=str(WHISPER_CPP),
        VOXHELM_WHISPERCPP_MODEL=str(ggml_tiny_en),
    ).stt
    engines = Engines()
    plain = engines.transcribe(speech(PLACES), "auto", TranscriptionRequest(), stt).text
    assert "Zentrik" not in plain
    hinted = engines.transcribe(
        speech(PLACES), "auto", TranscriptionRequest(hotwords=("Quillboro", "Zentrik")), stt
    ).text
    # The spelling is the point: whisper.cpp sometimes writes the hinted name lowercase (the
    # test speech varies a little from run to run, as Piper adds noise).
    assert "quillboro" in hinted.lower()
    assert "zentrik" in hinted.lower()


def test_the_request_words_join_the_configured_ones(tmp_path: Path) -> None:
    stt = make_config(tmp_path, VOXHELM_STT_HOTWORDS="Voxhelm,Piper").stt
    fw = FasterWhisperBackend(stt.fasterwhisper, stt.model_cache_dir)
    cpp = WhisperCppBackend(stt.whispercpp, stt.model_cache_dir)
    request = TranscriptionRequest(prompt="A podcast.", hotwords=("Piper", "Zentrik"))
    assert with_hotwords(request, fw, stt).hotwords == ("Voxhelm", "Piper", "Zentrik")
    assert with_hotwords(request, fw, stt).prompt == "A podcast."
    folded = with_hotwords(request, cpp, stt)
    assert folded.prompt == "A podcast. Vocabulary: Voxhelm, Piper, Zentrik."
    assert folded.hotwords == ()
    none = make_config(tmp_path).stt
    assert with_hotwords(TranscriptionRequest(), cpp, none) == TranscriptionRequest()


def test_whisper_cpp_keeps_enough_context_for_a_prompt(tmp_path: Path, ggml_tiny_en: Path) -> None:
    # With --max-context 0 (the anti-loop default) whisper.cpp silently drops the prompt.
    stt = make_config(
        tmp_path,
        VOXHELM_WHISPERCPP_BIN=str(WHISPER_CPP),
        VOXHELM_WHISPERCPP_MODEL=str(ggml_tiny_en),
    ).stt
    cpp = WhisperCppBackend(stt.whispercpp, stt.model_cache_dir)
    out = tmp_path / "out"

    def context(request: TranscriptionRequest) -> str:
        argv = cpp.command(WHISPER_CPP, ggml_tiny_en, tmp_path / "in.wav", out, request)
        return argv[argv.index("--max-context") + 1]

    assert context(TranscriptionRequest()) == "0"
    assert context(TranscriptionRequest(prompt="Vocabulary: Voxhelm.")) == str(
        PROMPT_CONTEXT_TOKENS
    )

"""The packaged multilingual ``base`` model: assembly, model names, German speech."""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import jiwer
import pytest

from tests.conftest import make_config
from voxhelm import audio
from voxhelm.stt import multilingual
from voxhelm.stt.base import EngineState, TranscriptionRequest
from voxhelm.stt.faster_whisper import FasterWhisperBackend
from voxhelm.stt.registry import Engines, Invocation, accepted_models, resolve, validate_model

pytestmark = pytest.mark.slow

GERMAN = (
    "Guten Morgen. Wie ist das Wetter heute in Berlin? "
    "Ich möchte gerne einen Kaffee mit Milch und Zucker bestellen. "
    "Der Zug nach Hamburg fährt um halb neun vom zweiten Gleis ab."
)
# espeak-ng's German is robotic; base misses a few words of it ("Wetter" comes out as "mit",
# "Gleis" as "Bleis"). Measured: 13 % at 130 words per minute on x86-64 with int8.
MAX_GERMAN_WER = 0.35


def german_words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]+", " ", text.lower()).split()


def german_wer(reference: str, hypothesis: str) -> float:
    """Word error rate that keeps umlauts and ß (tests.speech's normalization is ASCII)."""
    return float(jiwer.wer(" ".join(german_words(reference)), " ".join(german_words(hypothesis))))


@pytest.fixture(scope="module")
def german_speech(tmp_path_factory: pytest.TempPathFactory) -> audio.Audio:
    """GERMAN spoken by espeak-ng (Debian package ``espeak-ng``), slowed down a little."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng); .ci/run installs it")
    path = tmp_path_factory.mktemp("german") / "german.wav"
    subprocess.run([espeak, "-v", "de", "-s", "130", "-w", str(path), GERMAN], check=True)
    return audio.decode(path)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def base(cache_dir: Path) -> FasterWhisperBackend:
    config = make_config().stt
    return FasterWhisperBackend(replace(config.fasterwhisper, model="base"), cache_dir)


def test_the_extra_is_installed_for_the_test_suite() -> None:
    assert multilingual.is_installed()
    assert multilingual.check() == []


def test_checking_the_engine_does_not_assemble_the_model(tmp_path: Path) -> None:
    config = make_config().stt
    engine = FasterWhisperBackend(replace(config.fasterwhisper, model="base"), tmp_path)
    assert engine.check() == []
    assert engine.status().state == EngineState.NOT_LOADED
    assert not multilingual.model_dir(tmp_path).exists()


def test_it_detects_german_without_a_language_hint(
    base: FasterWhisperBackend, german_speech: audio.Audio
) -> None:
    transcript = base.transcribe(german_speech, TranscriptionRequest())
    assert transcript.language == "de"
    assert transcript.model == "base"
    assert {"morgen", "berlin", "hamburg"} <= set(german_words(transcript.text))


def test_it_transcribes_german_with_language_de(
    base: FasterWhisperBackend, german_speech: audio.Audio
) -> None:
    transcript = base.transcribe(german_speech, TranscriptionRequest(language="de"))
    assert transcript.language == "de"
    assert german_wer(GERMAN, transcript.text) <= MAX_GERMAN_WER
    assert {"möchte", "milch", "zucker"} <= set(german_words(transcript.text))


def test_it_translates_german_into_english(
    base: FasterWhisperBackend, german_speech: audio.Audio
) -> None:
    transcript = base.transcribe(german_speech, TranscriptionRequest(task="translate"))
    assert transcript.task == "translate"
    words = set(german_words(transcript.text))
    assert {"morning", "berlin", "milk"} <= words
    assert "morgen" not in words


def test_it_assembles_the_model_once_and_reuses_it(
    base: FasterWhisperBackend, cache_dir: Path
) -> None:
    base.load()
    model_bin = multilingual.model_dir(cache_dir) / "model.bin"
    parts = multilingual.source_files()
    assert model_bin.stat().st_size == sum(
        parts[name].stat().st_size for name in ("model.bin.part1", "model.bin.part2")
    )
    before = model_bin.stat()

    config = make_config().stt
    second = FasterWhisperBackend(replace(config.fasterwhisper, model="base"), cache_dir)
    second.load()
    after = model_bin.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert second.status().state == EngineState.READY
    assert sorted(p.name for p in model_bin.parent.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]


def test_it_reassembles_a_model_of_the_wrong_size(tmp_path: Path) -> None:
    target = multilingual.assemble(tmp_path)
    expected = (target / "model.bin").stat().st_size
    with (target / "model.bin").open("r+b") as model_bin:
        model_bin.truncate(expected // 2)  # as an interrupted copy would leave it
    (target / "vocabulary.txt").unlink()

    multilingual.assemble(tmp_path)
    assert (target / "model.bin").stat().st_size == expected
    assert (target / "vocabulary.txt").read_bytes() == (
        multilingual.source_files()["vocabulary.txt"].read_bytes()
    )
    with (target / "model.bin").open("rb") as model_bin:
        model_bin.seek(expected // 2)
        second_half = model_bin.read(4096)
    with multilingual.source_files()["model.bin.part2"].open("rb") as part2:
        part2.seek(expected // 2 - multilingual.source_files()["model.bin.part1"].stat().st_size)
        assert second_half == part2.read(4096)


def test_two_processes_can_assemble_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        results = list(pool.map(multilingual.assemble, [tmp_path, tmp_path]))
    assert results == [multilingual.model_dir(tmp_path)] * 2
    parts = multilingual.source_files()
    size = parts["model.bin.part1"].stat().st_size + parts["model.bin.part2"].stat().st_size
    assert (results[0] / "model.bin").stat().st_size == size
    assert not list(results[0].glob(".*.tmp"))


def test_base_is_an_accepted_request_model_served_by_faster_whisper() -> None:
    stt = make_config().stt
    assert "base" in accepted_models(stt)
    assert validate_model("base", stt) == "base"
    assert resolve("base", stt) == [Invocation("fasterwhisper", "base")]
    # The default model is unchanged: aliases still mean the bundled tiny.en.
    assert resolve("whisper-1", stt) == [Invocation("fasterwhisper", "tiny.en")]


def test_a_request_for_base_transcribes_with_it(
    german_speech: audio.Audio, cache_dir: Path
) -> None:
    stt = make_config(VOXHELM_MODEL_CACHE_DIR=str(cache_dir)).stt
    transcript = Engines().transcribe(
        german_speech, "base", TranscriptionRequest(language="de"), stt
    )
    assert (transcript.backend, transcript.model, transcript.language) == (
        "fasterwhisper",
        "base",
        "de",
    )
    assert "berlin" in german_words(transcript.text)

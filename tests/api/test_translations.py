"""POST /v1/audio/translations with the official client: German speech to English text.

There is no German Piper voice among the packages, so the German speech is espeak-ng's
(Debian package ``espeak-ng``, as in tests/stt/test_multilingual.py); the multilingual
``base`` model comes from the ``multilingual`` extra of the dev group.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import openai
import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.speech import normalize_words, synthesize

pytestmark = [
    pytest.mark.slow,
    # The official client marks translations.create deprecated; it is what clients call.
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]

GERMAN = (
    "Guten Morgen. Wie ist das Wetter heute in Berlin? "
    "Ich möchte gerne einen Kaffee mit Milch und Zucker bestellen."
)


@pytest.fixture(scope="module")
def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


@pytest.fixture(scope="module")
def german_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng); .ci/run installs it")
    path: Path = tmp_path_factory.mktemp("german") / "german.wav"
    subprocess.run([espeak, "-v", "de", "-s", "130", "-w", str(path), GERMAN], check=True)
    return path.read_bytes()


def test_it_translates_german_speech_into_english(oai: openai.OpenAI, german_wav: bytes) -> None:
    result = oai.audio.translations.create(model="base", file=("german.wav", german_wav))
    words = set(normalize_words(result.text))
    # base renders this as "Good morning, this is the weather in Berlin. I want to have a
    # coffee with milk and so to say." (espeak's "Zucker" is hard to make out).
    assert {"good", "morning", "weather", "berlin", "coffee", "milk"} <= words, result.text
    assert not words & {"guten", "wetter", "möchte", "kaffee", "milch", "zucker"}, result.text


def test_verbose_json_names_the_translate_task(oai: openai.OpenAI, german_wav: bytes) -> None:
    result = oai.audio.translations.create(
        model="base", file=("german.wav", german_wav), response_format="verbose_json"
    )
    data = result.model_dump()
    assert data["task"] == "translate"
    assert data["language"] == "english"  # the output's language, as OpenAI's type says
    assert data["segments"]
    assert "coffee" in result.text.lower()


def test_it_refuses_an_english_only_model_naming_the_reason(oai: openai.OpenAI) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    with pytest.raises(openai.BadRequestError) as refused:
        oai.audio.translations.create(model="whisper-1", file=("clip.wav", clip.wav_bytes()))
    error = refused.value
    assert error.code == "unsupported_task"
    assert error.param == "model"
    assert "tiny.en" in error.message
    assert "English-only" in error.message
    assert "base" in error.message
    with pytest.raises(openai.BadRequestError) as concrete:
        oai.audio.translations.create(model="tiny.en", file=("clip.wav", clip.wav_bytes()))
    assert concrete.value.code == "unsupported_task"


def test_it_refuses_unknown_models_and_missing_files(server: ServerProcess) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    with server.client() as client:
        unknown = client.post(
            "/v1/audio/translations",
            files={"file": ("clip.wav", clip.wav_bytes())},
            data={"model": "no-such-model"},
        )
        missing = client.post("/v1/audio/translations", data={"model": "base"}, files={})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "model_not_found"
    assert missing.status_code == 400

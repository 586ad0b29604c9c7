"""The per-request ``hotwords`` field (a Voxhelm extension) through the official client."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.speech import synthesize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


def test_a_request_can_name_its_hotwords(oai: openai.OpenAI) -> None:
    clip = synthesize("Please ask Voxhelm to transcribe the episode.").wav_bytes()
    plain = oai.audio.transcriptions.create(model="whisper-1", file=("clip.wav", clip))
    assert "Voxhelm" not in plain.text
    hinted = oai.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", clip), extra_body={"hotwords": "Voxhelm, Piper"}
    )
    assert "Voxhelm" in hinted.text


def test_it_refuses_too_many_hotwords(oai: openai.OpenAI) -> None:
    clip = synthesize("Please turn on the kitchen lights.").wav_bytes()
    with pytest.raises(openai.BadRequestError) as refused:
        oai.audio.transcriptions.create(
            model="whisper-1",
            file=("clip.wav", clip),
            extra_body={"hotwords": ",".join(f"word{i}" for i in range(51))},
        )
    assert refused.value.param == "hotwords"

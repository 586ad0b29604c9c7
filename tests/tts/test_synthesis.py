"""In-process synthesis: real Piper speech, checked by ear (the real faster-whisper model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_config
from tests.held import lanes_held
from tests.speech import EPISODE, HEARD_SYNTHESIS, SENTENCES, word_error_rate
from tests.tts.conftest import listen
from voxhelm import lanes, tts
from voxhelm.capacity import Admission
from voxhelm.config import Config
from voxhelm.errors import Busy, InvalidInput

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("tts")
    return make_config(root, VOXHELM_LANE_SCHEDULER_DIR=str(root / "lanes"))


@pytest.mark.parametrize("text", SENTENCES)
def test_it_speaks_each_sentence_intelligibly(config: Config, text: str) -> None:
    speech = tts.synthesize(text, config=config, voice="alloy")
    assert speech.voice.name == "en_US-joe-medium"
    assert speech.language == "en"
    assert speech.audio.sample_rate == 22050
    assert speech.audio.samples.dtype == np.float32
    assert word_error_rate(text, listen(speech.audio)) <= HEARD_SYNTHESIS


def test_it_streams_one_chunk_per_sentence(config: Config) -> None:
    text = " ".join(SENTENCES)
    stream = tts.stream(text, config=config)
    assert stream.sample_rate == 22050  # known before anything is synthesized
    chunks = list(stream)
    assert len(chunks) == len(SENTENCES)
    whole = np.concatenate([c.samples for c in chunks])
    from voxhelm.audio import Audio

    assert word_error_rate(text, listen(Audio(whole, stream.sample_rate))) <= HEARD_SYNTHESIS


def test_speed_changes_the_pace(config: Config) -> None:
    # Piper's length_scale (1 / speed) stretches the phonemes but not all of the pauses,
    # so the duration follows the speed in direction, not exactly in proportion.
    durations = {
        speed: tts.synthesize(SENTENCES[1], config=config, speed=speed).audio.duration
        for speed in (0.25, 0.5, 1.0, 2.0, 4.0)
    }
    ordered = [durations[s] for s in sorted(durations)]
    assert ordered == sorted(ordered, reverse=True)
    assert durations[0.5] / durations[1.0] > 1.4
    # Piper draws each phoneme's length with some noise: 0.64-0.68 over 12 runs here, and
    # once 0.76 in CI; twice the speed still never comes near the same duration.
    assert durations[2.0] / durations[1.0] < 0.8


def test_a_stream_closed_early_computes_nothing_more(config: Config) -> None:
    stream = tts.stream(" ".join(EPISODE), config=config)
    first = next(stream)
    assert first.duration > 1.0
    stream.close()
    assert list(stream) == []


def test_text_with_nothing_to_speak_is_invalid_input(config: Config) -> None:
    with pytest.raises(InvalidInput) as caught:
        tts.synthesize("...", config=config)
    assert caught.value.param == "input"
    assert caught.value.code == "nothing_to_speak"


@pytest.mark.parametrize("text", ["", "   \n\t", None, 42])
def test_blank_or_missing_text_is_refused(config: Config, text: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        tts.validate_text(text, 100)
    assert caught.value.param == "input"
    assert caught.value.message == "The 'input' field is required and must be a non-empty string."


def test_text_over_the_limit_is_refused_after_stripping(tmp_path: Path) -> None:
    assert tts.validate_text("  " + "a" * 10 + "  ", 10) == "a" * 10
    small = make_config(tmp_path, VOXHELM_TTS_MAX_INPUT_CHARS="10")
    with pytest.raises(InvalidInput) as caught:
        tts.stream("a" * 11, config=small)
    assert caught.value.message == "Input text exceeded the configured 10 character limit."
    assert caught.value.param == "input"


def test_batch_callers_name_their_own_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        tts.validate_text("", 10, param="input.text")
    assert caught.value.param == "input.text"


@pytest.mark.parametrize("speed", [0.1, 4.01, -1, True, False, "fast", float("nan"), [1.0]])
def test_a_bad_speed_is_refused(speed: object) -> None:
    # Booleans are refused: the reference took True for 1.0.
    with pytest.raises(InvalidInput) as caught:
        tts.validate_speed(speed)
    assert caught.value.param == "speed"
    assert "between 0.25 and 4.0" in caught.value.message


@pytest.mark.parametrize("speed", [0.25, 1, 4.0, None])
def test_a_good_speed_passes(speed: object) -> None:
    assert tts.validate_speed(speed) == (1.0 if speed is None else float(speed))  # type: ignore[arg-type]


@pytest.fixture
def held_slot(config: Config) -> Iterator[None]:
    with lanes_held(config):
        yield


def test_each_sentence_waits_for_a_lane_slot(config: Config, held_slot: None) -> None:
    stream = tts.stream(
        SENTENCES[0], config=config, admission=Admission(lanes.NON_INTERACTIVE, 0.3)
    )
    with pytest.raises(Busy):
        next(stream)
    # The interactive lane has a slot of its own (VOXHELM_LANE_INTERACTIVE_SLOTS=1).
    interactive = tts.stream(
        SENTENCES[0], config=config, admission=Admission(lanes.INTERACTIVE, 0.3)
    )
    assert next(interactive).duration > 1.0

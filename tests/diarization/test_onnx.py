"""The embedded engine on real (synthetic) speech: turns of two and three distinct voices."""

from __future__ import annotations

import numpy as np
import pytest

from tests.diarization.conversation import (
    THREE_SPEAKERS,
    TWO_SPEAKERS,
    Line,
    converse,
    has_espeak,
)
from tests.diarization.scoring import diarization_error
from tests.speech import BOOK
from voxhelm.audio import Audio
from voxhelm.diarization.align import normalize_turns
from voxhelm.diarization.base import SpeakerHints, Turn
from voxhelm.diarization.onnx import OnnxDiarizer, Window, turns_of, windows_of

pytestmark = pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run")


@pytest.fixture(scope="module")
def engine() -> OnnxDiarizer:
    return OnnxDiarizer()


def test_it_finds_who_speaks_when_in_a_two_speaker_conversation(engine: OnnxDiarizer) -> None:
    conversation = converse(TWO_SPEAKERS, pause_seconds=0.3)
    turns = normalize_turns(engine.diarize(conversation.audio(), SpeakerHints()))
    assert {t.speaker for t in turns} == {"Speaker 1", "Speaker 2"}
    assert diarization_error(conversation.turns, turns, collar=0.25).der < 0.05
    assert turns[0].speaker == "Speaker 1" and turns[0].start < 0.5  # Piper opens


def test_it_finds_three_speakers_without_a_hint(engine: OnnxDiarizer) -> None:
    conversation = converse(THREE_SPEAKERS)
    turns = engine.diarize(conversation.audio(), SpeakerHints())
    assert len({t.speaker for t in turns}) == 3
    assert diarization_error(conversation.turns, turns, collar=0.25).der < 0.05


def test_it_honours_the_speaker_count_hints(engine: OnnxDiarizer) -> None:
    conversation = converse(THREE_SPEAKERS)
    assert (
        len({t.speaker for t in engine.diarize(conversation.audio(), SpeakerHints(num_speakers=2))})
        == 2
    )
    assert (
        len({t.speaker for t in engine.diarize(conversation.audio(), SpeakerHints(max_speakers=2))})
        <= 2
    )


def test_it_finds_no_turns_in_silence(engine: OnnxDiarizer) -> None:
    assert engine.diarize(Audio(np.zeros(16000 * 3, dtype=np.float32)), SpeakerHints()) == []


def test_it_checks_its_models() -> None:
    assert OnnxDiarizer().check() == []


def test_windows_cover_each_region_and_end_with_it() -> None:
    windows = windows_of([(0, 16000), (20000, 20000 + 40000), (70000, 72000)])
    assert windows[0] == Window(0, 16000, 0)  # shorter than a window: the whole region
    region = [w for w in windows if w.region == 1]
    assert [w.start for w in region] == [20000, 32000, 36000]  # 0.75 s hop, last one flush
    assert region[-1].end == 60000
    assert all(w.end - w.start == 24000 for w in region)
    assert not [w for w in windows if w.region == 2]  # 0.125 s is a blip, not embedded


def test_overlapping_windows_hand_over_at_the_middle_and_merge() -> None:
    regions = [(0, 48000), (64000, 66000)]
    windows = [Window(0, 24000, 0), Window(12000, 36000, 0), Window(24000, 48000, 0)]
    turns = turns_of(regions, windows, np.array([0, 0, 1]))
    assert turns == [
        Turn(0.0, 30000 / 16000, "cluster_0"),
        Turn(30000 / 16000, 3.0, "cluster_1"),
        Turn(4.0, 66000 / 16000, "cluster_1"),  # a blip region takes its nearest window's
    ]


def test_it_tells_two_voices_apart_in_a_short_exchange_without_pauses(
    engine: OnnxDiarizer,
) -> None:
    # Seven windows only, and the change falls inside one speech region.
    conversation = converse(
        [
            Line("piper", "Please turn on the kitchen lights and open the garden door."),
            Line("ava", "Sure, I will do that right after the news on the radio."),
        ],
        pause_seconds=0.1,
    )
    turns = normalize_turns(engine.diarize(conversation.audio(), SpeakerHints()))
    assert [t.speaker for t in turns] == ["Speaker 1", "Speaker 2"]
    assert abs(turns[1].start - conversation.turns[1].start) < 0.4


def test_one_voice_stays_one_speaker(engine: OnnxDiarizer) -> None:
    conversation = converse([Line("piper", text) for text in BOOK[:4]], pause_seconds=0.3)
    turns = engine.diarize(conversation.audio(), SpeakerHints())
    assert len({t.speaker for t in turns}) == 1
    short = converse([Line("ava", BOOK[5])])
    assert len({t.speaker for t in engine.diarize(short.audio(), SpeakerHints())}) == 1

"""Known speakers: voiceprints from reference clips, matching, and the sidecar document."""

from __future__ import annotations

import numpy as np
import pytest

from tests.diarization.conversation import TWO_SPEAKERS, Conversation, Line, converse, has_espeak
from voxhelm.audio import Audio
from voxhelm.diarization.align import normalize_turns
from voxhelm.diarization.base import DiarizationError
from voxhelm.diarization.embedding import SpeakerEmbedder, model_version
from voxhelm.diarization.known import (
    NO_REFERENCES,
    NO_VOICEPRINT,
    MatchOptions,
    ReferenceClip,
    identify,
    match,
    reference_voiceprints,
    sidecar,
)
from voxhelm.transcript import Segment, Transcript, Word

pytestmark = pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run")


@pytest.fixture(scope="module")
def embedder() -> SpeakerEmbedder:
    return SpeakerEmbedder()


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    return converse(TWO_SPEAKERS)


@pytest.fixture(scope="module")
def prints(embedder: SpeakerEmbedder) -> dict[str, np.ndarray]:
    joe = converse(
        [Line("piper", "Fresh bread from the bakery on the corner sells out before nine.")]
    )
    ava_1 = converse([Line("ava", "The museum opened a new exhibition about ancient maps.")])
    ava_2 = converse([Line("ava", "Remember to water the tomatoes before the afternoon sun.")])
    return reference_voiceprints(
        [
            ReferenceClip("Joe", joe.audio()),
            ReferenceClip("Ava", ava_1.audio()),
            ReferenceClip("Ava", ava_2.audio()),  # same name, another id: merged
        ],
        embedder,
    )


def transcript_from(conversation: Conversation) -> Transcript:
    segments = [
        Segment(id=i, start=turn.start, end=turn.end, text=line.text)
        for i, (turn, line) in enumerate(zip(conversation.turns, conversation.lines, strict=True))
    ]
    return Transcript.from_segments(segments, "en", conversation.duration)


def test_voiceprints_are_one_unit_vector_per_name(prints: dict[str, np.ndarray]) -> None:
    assert sorted(prints) == ["Ava", "Joe"]
    for vector in prints.values():
        assert vector.shape == (192,)
        assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)


def test_it_names_every_segment_through_the_anonymous_speakers(
    conversation: Conversation, prints: dict[str, np.ndarray], embedder: SpeakerEmbedder
) -> None:
    turns = normalize_turns(conversation.turns)  # piper → Speaker 1, ava → Speaker 2
    matches = identify(
        transcript_from(conversation),
        audio=conversation.audio(),
        turns=turns,
        prints=prints,
        embedder=embedder,
        options=MatchOptions(),
    ).matches
    document = sidecar(matches, ["Joe", "Ava", "Ava"], MatchOptions(), raw_available=True)
    names = {"piper": "Joe", "ava": "Ava"}
    expected = [names[line.speaker] for line in conversation.lines]
    assert [s["speaker"] for s in document["segments"]] == expected
    assert [s["raw_diarization_speaker"] for s in document["segments"]] == [
        "Speaker 1" if n == "Joe" else "Speaker 2" for n in expected
    ]
    first = document["segments"][0]
    assert set(first) == {
        "index",
        "start",
        "end",
        "speaker",
        "speaker_source",
        "speaker_confidence",
        "speaker_margin",
        "speaker_candidates",
        "speaker_uncertain",
        "raw_diarization_speaker",
    }
    assert first["speaker_candidates"][0]["similarity"] == first["speaker_confidence"] > 0.55
    assert first["speaker_margin"] >= 0.15
    summary = document["summary"]
    assert summary["known_speakers"] == ["Ava", "Joe"]
    assert summary["embedding_version"] == model_version()
    assert (summary["segment_count"], summary["confident_segment_count"]) == (6, 6)
    assert summary["uncertain_segment_count"] == 0
    assert summary["confident_speaker_distribution"] == {"Joe": 3, "Ava": 3}
    assert list(summary["confident_speaker_distribution"]) == ["Joe", "Ava"]  # first seen
    assert summary["raw_diarization_available"] is True


def test_a_segment_holding_two_voices_is_cut_as_anonymous_labels_cut_it(
    conversation: Conversation, prints: dict[str, np.ndarray], embedder: SpeakerEmbedder
) -> None:
    # Whisper kept Piper's line and Ava's reply in one segment; its words are timed here
    # evenly over each line's true turn (recognition is not under test, the voices are).
    first, second = conversation.turns[:2]
    words = []
    for turn, line in zip((first, second), conversation.lines[:2], strict=True):
        spoken = line.text.split()
        step = turn.duration / len(spoken)
        words += [
            Word(turn.start + i * step, turn.start + (i + 1) * step, f" {word}")
            for i, word in enumerate(spoken)
        ]
    both = Segment(0, first.start, second.end, "".join(w.word for w in words), words=tuple(words))
    identified = identify(
        Transcript.from_segments([both], "en", conversation.duration),
        audio=conversation.audio(),
        turns=normalize_turns(conversation.turns),
        prints=prints,
        embedder=embedder,
        options=MatchOptions(),
    )
    cut = identified.transcript
    assert [(s.text, s.speaker) for s in cut.segments] == [
        (conversation.lines[0].text, "Speaker 1"),
        (conversation.lines[1].text, "Speaker 2"),
    ]
    assert [(m.index, m.start, m.end) for m in identified.matches] == [
        (s.id, s.start, s.end) for s in cut.segments
    ]
    assert [m.match.top[0] for m in identified.matches if m.match and m.match.top] == [
        "Joe",
        "Ava",
    ]
    assert [m.raw_speaker for m in identified.matches] == ["Speaker 1", "Speaker 2"]


def test_without_anonymous_turns_segments_match_on_their_own_audio(
    conversation: Conversation, prints: dict[str, np.ndarray], embedder: SpeakerEmbedder
) -> None:
    transcript = transcript_from(conversation)
    short = Segment(id=6, start=0.3, end=1.0, text=" Welcome")  # under min_segment_duration
    transcript = Transcript.from_segments([*transcript.segments, short], "en", None)
    matches = identify(
        transcript,
        audio=conversation.audio(),
        turns=None,
        prints=prints,
        embedder=embedder,
        options=MatchOptions(),
    ).matches
    document = sidecar(matches, ["Joe", "Ava"], MatchOptions(), raw_available=False)
    speakers = [s["speaker"] for s in document["segments"]]
    assert speakers[:6] == ["Joe", "Ava", "Joe", "Ava", "Joe", "Ava"]
    assert speakers[6] is None  # too short to be sure, however similar
    assert document["segments"][6]["speaker_uncertain"] is True
    assert document["segments"][6]["speaker_candidates"][0]["speaker"] == "Joe"
    assert document["summary"]["uncertain_segment_count"] == 1
    assert document["summary"]["raw_diarization_available"] is False


def test_a_match_needs_both_similarity_and_margin() -> None:
    prints = {"A": np.array([1.0, 0.0]), "B": np.array([0.0, 1.0])}
    strict = MatchOptions(min_top_similarity=0.55, auto_accept_margin=0.15)
    assert match(np.array([0.9, 0.1]), prints, strict).confident
    close = match(np.array([0.6, 0.5]), prints, strict)
    assert (close.confident, close.margin) == (False, 0.1)
    weak = match(np.array([0.5, 0.0]), prints, strict)
    assert not weak.confident
    tie = match(np.array([0.5, 0.5]), prints, strict)
    assert [name for name, _ in tie.candidates] == ["A", "B"]  # ties by name
    single = match(np.array([0.7, 0.0]), {"A": np.array([1.0, 0.0])}, strict)
    assert (single.margin, single.confident) == (0.7, True)


def test_unusable_references_are_clear_errors(embedder: SpeakerEmbedder) -> None:
    with pytest.raises(DiarizationError, match=NO_REFERENCES):
        reference_voiceprints([], embedder)
    silent = ReferenceClip("X", Audio(np.zeros(1000, dtype=np.float32)))
    with pytest.raises(DiarizationError, match=NO_VOICEPRINT):
        reference_voiceprints([silent], embedder)

"""The interactive transcript normalizer (reference §1.10), with the reference's own examples."""

from __future__ import annotations

import pytest

from voxhelm.wyoming_server.normalize import language_key, normalize_transcript


def test_it_drops_leading_fillers_and_the_german_question_padding() -> None:
    text = "Okay, und wie ist denn die Temperatur im Wintergarten?"
    assert normalize_transcript(text, "de-DE") == "wie ist die Temperatur im Wintergarten?"


def test_a_transcript_of_nothing_but_fillers_stays_as_it_was() -> None:
    assert normalize_transcript("Okay.", "en") == "Okay."
    assert normalize_transcript("  Hmm ...  äh ", "de") == "Hmm ... äh"


def test_it_leaves_languages_without_rules_alone() -> None:
    text = "Okay, allume la lumière de la cuisine."
    assert normalize_transcript(text, "fr") == text
    assert normalize_transcript(text, None) == text


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("So, turn on the lights.", "en", "turn on the lights."),
        ("Well well, okay - and what time is it?", "en_US", "what time is it?"),
        ("OK… turn it off", "EN", "turn it off"),
        ("ok", "en", "ok"),
        ("Also, äh, mach das Licht an.", "de", "mach das Licht an."),
        ("Hmm hm, was ist eigentlich los?", "de-AT", "was ist los?"),
        ("Und was ist mal das Wetter?", "de", "was ist das Wetter?"),
        ("Wie ist mal das Wetter?", "de", "Wie ist das Wetter?"),
    ],
)
def test_it_removes_every_leading_filler(text: str, language: str, expected: str) -> None:
    assert normalize_transcript(text, language) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Sofa lights on.",  # "so" must be a whole word
        "Okayish weather today.",
        "Turn on the lights, okay?",  # only leading fillers go
        "Andrew is home.",
    ],
)
def test_it_keeps_words_that_only_start_like_a_filler(text: str) -> None:
    assert normalize_transcript(text, "en") == text


def test_it_collapses_whitespace() -> None:
    assert normalize_transcript("  turn \n on\tthe   lights ", "en") == "turn on the lights"


def test_the_german_padding_rule_applies_at_the_start_only() -> None:
    text = "Sag mir, wie ist denn das Wetter?"
    assert normalize_transcript(text, "de") == text


@pytest.mark.parametrize(
    ("language", "key"), [("de-DE", "de"), ("de_DE", "de"), ("EN", "en"), (None, ""), ("", "")]
)
def test_the_language_key_is_the_primary_subtag(language: str | None, key: str) -> None:
    assert language_key(language) == key

"""Sentences out of streamed text: each one handed out as soon as it is known to be complete."""

from __future__ import annotations

import pytest

from voxhelm.tts.sentences import SentenceBuffer


def feed(pieces: list[str]) -> tuple[list[list[str]], str]:
    buffer = SentenceBuffer()
    return [buffer.add(piece) for piece in pieces], buffer.finish()


def test_it_hands_out_a_sentence_once_the_next_one_starts() -> None:
    steps, rest = feed(["Hello wor", "ld. How", " are you? I am", " fine."])
    assert steps == [[], ["Hello world."], ["How are you?"], []]
    assert rest == "I am fine."


def test_it_splits_several_sentences_in_one_piece() -> None:
    steps, rest = feed(["One! Two? Three… Four. Fi", "ve"])
    assert steps == [["One!", "Two?", "Three…", "Four."], []]
    assert rest == "Five"


@pytest.mark.parametrize(
    "text",
    [
        "I met Dr. Smith today.",
        "It costs 3.50 euros.",
        "Call me at 5 p.m. tomorrow.",
        "See e.g. the manual.",
    ],
)
def test_it_does_not_split_at_abbreviations_or_numbers(text: str) -> None:
    steps, rest = feed([text, " Next"])
    assert steps == [[], [text]]
    assert rest == "Next"


def test_closing_quotes_stay_with_their_sentence() -> None:
    steps, _ = feed(['She said "stop." Then ', "left."])
    assert steps[0] == ['She said "stop."']


def test_a_blank_line_ends_a_sentence() -> None:
    steps, rest = feed(["A heading\n\nThe text"])
    assert steps == [["A heading"]]
    assert rest == "The text"


def test_finish_empties_the_buffer() -> None:
    buffer = SentenceBuffer()
    buffer.add("Half a sent")
    assert buffer.pending == "Half a sent"
    assert buffer.finish() == "Half a sent"
    assert buffer.finish() == ""

"""The reading view's regrouping: sentences across Whisper's fragments, paragraph breaks."""

from __future__ import annotations

from voxhelm.console.listing import SegmentView
from voxhelm.console.paragraphs import paragraphs


def seg(start: float, end: float, text: str, speaker: str = "") -> SegmentView:
    return SegmentView(id=0, start=start, end=end, at="", text=text, speaker=speaker)


def test_a_sentence_split_across_fragments_reads_as_one() -> None:
    result = paragraphs(
        [
            seg(0.0, 4.0, " It is the duty of a government to do prudently in"),
            seg(4.0, 6.0, " his power to do for them. The people agree."),
            seg(6.0, 8.0, " Mr. Smith said so."),
        ]
    )
    assert len(result) == 1
    texts = [sentence.text for sentence in result[0].sentences]
    assert texts == [
        "It is the duty of a government to do prudently in his power to do for them.",
        "The people agree.",
        "Mr. Smith said so.",
    ]
    first, second, third = result[0].sentences
    assert first.start == 0.0 and 5.0 < first.end < 6.0
    assert 5.0 < second.start < 6.0  # inside the second fragment, by its characters
    assert third.start == 6.0 and third.end == 8.0


def test_a_speaker_change_or_a_pause_after_a_sentence_starts_a_paragraph() -> None:
    result = paragraphs(
        [
            seg(0.0, 2.0, "Welcome to the show.", "Speaker 1"),
            seg(2.1, 4.0, "Thanks for having me.", "Speaker 2"),
            seg(4.0, 5.0, "It is a pleasure.", "Speaker 2"),
            seg(7.5, 9.0, "So, the harbour.", "Speaker 2"),
            seg(9.5, 11.0, "Which one", "Speaker 2"),  # then a pause mid-sentence: same paragraph
            seg(13.5, 15.0, "do you mean?", "Speaker 2"),
        ]
    )
    assert [(p.speaker, [s.text for s in p.sentences]) for p in result] == [
        ("Speaker 1", ["Welcome to the show."]),
        ("Speaker 2", ["Thanks for having me.", "It is a pleasure."]),
        ("Speaker 2", ["So, the harbour.", "Which one do you mean?"]),
    ]
    assert result[2].start == 7.5 and result[2].at == "0:07"


def test_text_without_punctuation_keeps_the_fragments_as_units() -> None:
    result = paragraphs([seg(0.0, 3.0, "no punctuation here"), seg(3.0, 6.0, "nor here")])
    assert [(s.start, s.text) for s in result[0].sentences] == [
        (0.0, "no punctuation here"),
        (3.0, "nor here"),
    ]

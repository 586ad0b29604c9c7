"""WebVTT and SubRip: escaping, normalization, and parsing back with real subtitle parsers."""

from __future__ import annotations

import html

import pysrt  # type: ignore[import-untyped]  # the package ships no type hints
import webvtt

from voxhelm.formats import render
from voxhelm.transcript import Segment, Transcript


def make(*segments: Segment, text: str | None = None) -> Transcript:
    transcript = Transcript.from_segments(segments, language="en", duration=None)
    if text is not None:
        return Transcript(text=text, language="en", duration=None, segments=transcript.segments)
    return transcript


def vtt(transcript: Transcript) -> str:
    return render(transcript, "vtt").body.decode("utf-8")


def srt(transcript: Transcript) -> str:
    return render(transcript, "srt").body.decode("utf-8")


HOSTILE = make(
    Segment(0, 0.0, 1.0, "<b>bold</b> & co"),
    Segment(1, 1.0, 2.0, "a --> b"),
    Segment(2, 2.0, 3.0, "first line\n\n\nsecond line\n   \nthird"),
    Segment(3, 3.0, 4.0, "after"),
)


def test_it_escapes_cue_text() -> None:
    body = vtt(HOSTILE)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in body
    assert "<b>" not in body


def test_it_keeps_arrows_out_of_cue_text() -> None:
    body = vtt(HOSTILE)
    assert "a --&gt; b" in body
    assert body.count("-->") == 4


def test_it_removes_blank_lines_inside_a_cue() -> None:
    assert "\nfirst line\nsecond line\nthird\n\n" in vtt(HOSTILE)


def test_it_parses_back_with_webvtt_py() -> None:
    captions = webvtt.from_string(vtt(HOSTILE)).captions
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.000", "00:00:01.000"),
        ("00:00:01.000", "00:00:02.000"),
        ("00:00:02.000", "00:00:03.000"),
        ("00:00:03.000", "00:00:04.000"),
    ]
    assert [html.unescape(c.text) for c in captions] == [
        "<b>bold</b> & co",
        "a --> b",
        "first line\nsecond line\nthird",
        "after",
    ]


def test_it_writes_speakers_as_voice_tags_webvtt_py_understands() -> None:
    transcript = make(Segment(0, 0.0, 1.0, "Hi"), Segment(1, 1.0, 2.0, "Yo")).with_speakers(
        ["Speaker 1", None]
    )
    captions = webvtt.from_string(vtt(transcript)).captions
    assert [c.voice for c in captions] == ["Speaker 1", None]
    assert [c.text for c in captions] == ["Hi", "Yo"]


def test_it_escapes_speaker_names_in_voice_tags() -> None:
    transcript = make(Segment(0, 0.0, 1.0, "Hi")).with_speakers(["A>B &\nC"])
    assert "<v A&gt;B &amp; C>Hi\n" in vtt(transcript)


def test_it_clamps_cue_ends_to_their_starts() -> None:
    body = vtt(make(Segment(0, 2.0, 1.0, "backwards")))
    assert "00:00:02.000 --> 00:00:02.000\nbackwards" in body
    assert "00:00:02,000 --> 00:00:02,000" in srt(make(Segment(0, 2.0, 1.0, "backwards")))


def test_it_drops_blank_segments_from_subtitles() -> None:
    transcript = make(Segment(0, 0.0, 1.0, "  "), Segment(1, 1.0, 2.0, "kept"))
    assert vtt(transcript) == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nkept\n"
    assert srt(transcript) == "1\n00:00:01,000 --> 00:00:02,000\nkept\n"


def test_it_renders_text_without_segments_as_one_zero_length_cue() -> None:
    transcript = make(text="Only text.")
    assert vtt(transcript) == "WEBVTT\n\n00:00:00.000 --> 00:00:00.000\nOnly text.\n"
    assert srt(transcript) == "1\n00:00:00,000 --> 00:00:00,000\nOnly text.\n"


def test_it_numbers_srt_cues_from_one_and_parses_back_with_pysrt() -> None:
    transcript = make(
        Segment(0, 0.0, 1.25, "one"),
        Segment(1, 1.25, 2.5, "two\n\nlines"),
        Segment(2, 3661.001, 3662.0, "an hour later"),
    ).with_speakers(["Speaker 1", None, "Speaker 2"])
    subs = pysrt.from_string(srt(transcript))
    assert [s.index for s in subs] == [1, 2, 3]
    assert [(s.start.ordinal, s.end.ordinal) for s in subs] == [
        (0, 1250),
        (1250, 2500),
        (3661001, 3662000),
    ]
    assert [s.text for s in subs] == ["Speaker 1: one", "two\nlines", "Speaker 2: an hour later"]


def test_it_keeps_srt_text_lines_from_passing_for_timing_lines() -> None:
    transcript = make(Segment(0, 0.0, 1.0, "00:00:05,000 --> 00:00:06,000"))
    subs = pysrt.from_string(srt(transcript))
    assert len(subs) == 1
    assert subs[0].text == "00:00:05,000 -> 00:00:06,000"

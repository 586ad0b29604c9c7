"""Subtitle outputs: WebVTT (the reference's layout, with escaping) and SubRip."""

from __future__ import annotations

from voxhelm.formats.cues import Cue, normalized_cues, text_lines
from voxhelm.formats.timestamps import format_milliseconds
from voxhelm.transcript import Transcript


def escape_vtt(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so cue text cannot open a tag or contain ``-->``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(transcript: Transcript) -> bytes:
    """WebVTT in the reference's layout, with the reference's flaws fixed.

    ``WEBVTT``, a blank line, then per cue ``<start> --> <end>``, the text and a blank line;
    trailing whitespace stripped and one ``\\n`` appended (nothing at all gives ``WEBVTT\\n``).
    Unlike the reference, cues are the normalized segments (blank ones dropped, end clamped to
    the start), text is escaped, blank lines inside a text are removed so a cue cannot end
    early, and a segment's speaker becomes a voice tag ``<v Speaker 1>``.
    """
    parts = ["WEBVTT\n\n"]
    for cue in normalized_cues(transcript):
        start = format_milliseconds(cue.start_ms)
        end = format_milliseconds(cue.end_ms)
        parts.append(f"{start} --> {end}\n{_vtt_payload(cue)}\n\n")
    return ("".join(parts).rstrip() + "\n").encode("utf-8")


def render_srt(transcript: Transcript) -> bytes:
    """SubRip: cues numbered from 1, ``HH:MM:SS,mmm`` times, a blank line between cues.

    Cues are the normalized segments (blank ones dropped, end clamped to the start). Blank
    lines inside a text are removed and ``-->`` becomes ``->`` so a text line cannot pass for
    a timing line; a speaker is written as a ``Speaker 1: `` prefix. No cues gives an empty
    body.
    """
    blocks = []
    for number, cue in enumerate(normalized_cues(transcript), start=1):
        start = format_milliseconds(cue.start_ms, ",")
        end = format_milliseconds(cue.end_ms, ",")
        lines = [line.replace("-->", "->") for line in text_lines(cue.text)]
        if cue.speaker:
            lines[0] = f"{_single_line(cue.speaker)}: {lines[0]}"
        body = "\n".join(lines)
        blocks.append(f"{number}\n{start} --> {end}\n{body}\n")
    return "\n".join(blocks).encode("utf-8")


def _vtt_payload(cue: Cue) -> str:
    payload = "\n".join(escape_vtt(line) for line in text_lines(cue.text))
    if cue.speaker:
        payload = f"<v {escape_vtt(_single_line(cue.speaker))}>{payload}"
    return payload


def _single_line(text: str) -> str:
    return " ".join(text.split())

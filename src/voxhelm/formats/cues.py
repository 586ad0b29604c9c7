"""The reference's "normalized segments": the timed cues that subtitle and podcast formats show."""

from __future__ import annotations

from dataclasses import dataclass

from voxhelm.formats.timestamps import to_milliseconds
from voxhelm.transcript import Transcript


@dataclass(frozen=True)
class Cue:
    """A displayable stretch: stripped non-blank text, ``end_ms >= start_ms``, speaker or ``""``."""

    start_ms: int
    end_ms: int
    text: str
    speaker: str = ""


def normalized_cues(transcript: Transcript) -> list[Cue]:
    """The transcript's segments as cues, normalized the way the reference does for DOTe/Podlove.

    Segments with blank text are dropped, each end is clamped to be at least its start, and a
    transcript with text but no (non-blank) segments becomes one 0-0 cue.
    """
    cues: list[Cue] = []
    for segment in transcript.segments:
        text = segment.text.strip()
        if not text:
            continue
        start_ms = to_milliseconds(segment.start)
        end_ms = max(to_milliseconds(segment.end), start_ms)
        cues.append(Cue(start_ms, end_ms, text, (segment.speaker or "").strip()))
    if not cues and transcript.text.strip():
        cues.append(Cue(0, 0, transcript.text.strip()))
    return cues


def text_lines(text: str) -> list[str]:
    """The non-blank lines of ``text``, each stripped: a blank line would end a subtitle cue."""
    return [line for line in (raw.strip() for raw in text.splitlines()) if line]

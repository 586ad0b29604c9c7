"""The transcript page's reading view: Whisper's segments regrouped into paragraphs of sentences.

Whisper cuts where its 30-second windows and subtitle lengths fall, often mid-sentence
("… prudently in" / "his power to do for them."). Here the segments of one speaker turn are
joined and cut again at sentence ends; a new paragraph starts at a speaker change, at a pause
of more than :data:`PAUSE_SECONDS` after a finished sentence (or of :data:`LONG_PAUSE_SECONDS`
whatever came before), and at a sentence end once a paragraph has run
:data:`MAX_PARAGRAPH_SECONDS`. The downloads keep Whisper's segmentation.

A sentence plays from where it starts. Without word timestamps, a time inside a segment is
estimated by its share of the segment's characters (speech runs at a roughly even rate
within a few seconds); a sentence that starts a segment starts exactly at it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from voxhelm.console.listing import clock

PAUSE_SECONDS = 2.0
LONG_PAUSE_SECONDS = 5.0
MAX_PARAGRAPH_SECONDS = 90.0
# A sentence ends at . ! ? … (or their CJK forms), maybe followed by closing quotes or
# brackets, then a space or the end; abbreviations and initials are not ends (_ABBREVIATION).
_SENTENCE_END = re.compile("[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\\]]*(?=\\s|$)")
_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|etc|e\.g|i\.e|z\.B|bzw|usw|ca|Nr)|\b[A-Z])\.$",
    re.IGNORECASE,
)


class Timed(Protocol):
    """What a segment needs to be regrouped (``listing.SegmentView`` has it)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def text(self) -> str: ...
    @property
    def speaker(self) -> str: ...


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str


@dataclass
class Paragraph:
    speaker: str
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.sentences[0].start if self.sentences else 0.0

    @property
    def at(self) -> str:
        return clock(self.start)


def ends_sentence(text: str) -> bool:
    stripped = text.rstrip()
    match = _SENTENCE_END.search(stripped)
    return bool(match and match.end() == len(stripped) and not _ABBREVIATION.search(stripped))


def paragraphs(segments: Sequence[Timed]) -> list[Paragraph]:
    """The segments, in order, as paragraphs of sentences."""
    groups: list[list[Timed]] = []
    for segment in segments:
        if not segment.text.strip():
            continue
        if not groups or _breaks(groups[-1], segment):
            groups.append([])
        groups[-1].append(segment)
    return [_paragraph(group) for group in groups]


def _breaks(group: list[Timed], segment: Timed) -> bool:
    last = group[-1]
    if segment.speaker != last.speaker:
        return True
    pause = segment.start - last.end
    if pause > LONG_PAUSE_SECONDS:
        return True
    finished = ends_sentence(last.text)
    if finished and pause > PAUSE_SECONDS:
        return True
    return finished and segment.start - group[0].start > MAX_PARAGRAPH_SECONDS


def _paragraph(group: list[Timed]) -> Paragraph:
    """Join the group's texts (each piece remembers its segment's times), then cut at
    sentence ends; each sentence starts where its first character was spoken."""
    text = ""
    pieces: list[tuple[int, int, Timed]] = []  # (first, last char in text, segment)
    for segment in group:
        piece = " ".join(segment.text.split())
        if text:
            text += " "
        pieces.append((len(text), len(text) + len(piece), segment))
        text += piece
    cuts = [0]
    for match in _SENTENCE_END.finditer(text):
        if not _ABBREVIATION.search(text[: match.end()]):
            cuts.append(match.end())
    if not any(0 < cut < len(text) for cut in cuts):
        # No punctuation at all (some models, some languages): the segments are the units.
        cuts = [first for first, _last, _segment in pieces]
    cuts = [*sorted({cut for cut in cuts if cut < len(text)}), len(text)]
    paragraph = Paragraph(speaker=group[0].speaker)
    for first, last in itertools.pairwise(cuts):
        sentence = text[first:last].strip()
        if sentence:
            lead = first + len(text[first:last]) - len(text[first:last].lstrip())
            paragraph.sentences.append(
                Sentence(_time_at(pieces, lead), _time_at(pieces, last, end=True), sentence)
            )
    return paragraph


def _time_at(pieces: list[tuple[int, int, Timed]], offset: int, *, end: bool = False) -> float:
    """When the character at ``offset`` of the joined text was spoken (estimated)."""
    for first, last, segment in pieces:
        if offset < last or (end and offset == last):
            share = min(max((offset - first) / max(last - first, 1), 0.0), 1.0)
            return round(segment.start + share * (segment.end - segment.start), 3)
    return round(pieces[-1][2].end, 3) if pieces else 0.0

"""Complete sentences out of text that arrives in pieces (Wyoming's streaming synthesis).

Home Assistant streams a language model's answer a few words at a time. Speaking each
sentence as soon as it is complete lets the first one play while the rest is still being
written. A sentence is complete at ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets
included) once whitespace and the start of the next sentence follow, or at a blank line.
A ``.`` after a short capitalized word (``Dr.``, ``St.``) or before a lowercase letter is
not an end. Piper splits each piece into sentences again, so a missed end only delays
audio, never changes it.
"""

from __future__ import annotations

import re

# Sentence ends (with CJK full stops) and closing quotes, written as escapes for clarity.
_ENDS = ".!?\u2026\u3002\uff01\uff1f"
_CLOSERS = "\"'\u201d\u2019\u00bb)\\]"
_END = re.compile(rf"[{_ENDS}]+[{_CLOSERS}]*\s+(?=\S)|\n\s*\n\s*(?=\S)")
_ABBREVIATION = re.compile(r"(?:^|\s)[A-Z][a-z]{0,2}\.$")


class SentenceBuffer:
    """Collects streamed text and hands out each sentence once it is complete."""

    def __init__(self) -> None:
        self._text = ""

    @property
    def pending(self) -> str:
        """Text received but not yet handed out."""
        return self._text

    def add(self, text: str) -> list[str]:
        """Add ``text``; return the sentences it completed (stripped, never empty)."""
        self._text += text
        sentences: list[str] = []
        start = 0
        for match in _END.finditer(self._text):
            head = self._text[start : match.end()].strip()
            if self._continues(head, self._text[match.end()]):
                continue
            if head:
                sentences.append(head)
            start = match.end()
        self._text = self._text[start:]
        return sentences

    def finish(self) -> str:
        """The rest of the text (the last sentence), stripped; the buffer is emptied."""
        rest, self._text = self._text.strip(), ""
        return rest

    @staticmethod
    def _continues(head: str, following: str) -> bool:
        if not head.endswith("."):
            return False
        return following.islower() or bool(_ABBREVIATION.search(head))

"""The interactive transcript normalizer: leading filler words off voice commands (de, en).

Home Assistant matches intents against the transcript, and a command that starts with
"Okay, und ..." or "So, ..." matches worse than the bare command. Only leading fillers go;
the rest of the text is untouched (capitalisation too), and a transcript that is nothing
but fillers is kept as it was.
"""

from __future__ import annotations

import re

FILLERS: dict[str, tuple[str, ...]] = {
    "de": ("okay", "ok", "und", "also", "äh", "ah", "hm", "hmm"),
    "en": ("okay", "ok", "and", "so", "well"),
}
_STRIP = " ,.;:!?-…"
_FOLLOWERS = r"[\s,.;:!?\-…]"


def _filler_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, and the word must end there: "also" is not "also-ran"'s "al" + "so".
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"^(?:{alternatives})(?={_FOLLOWERS}|$)", re.IGNORECASE)


_PATTERNS = {language: _filler_pattern(words) for language, words in FILLERS.items()}
_GERMAN_QUESTION = re.compile(r"^(wie|was) ist (?:denn|eigentlich|mal) ", re.IGNORECASE)


def language_key(language: str | None) -> str:
    """``de-DE`` and ``de_DE`` -> ``de``; None -> ``""``."""
    return (language or "").strip().lower().replace("_", "-").split("-", 1)[0]


def normalize_transcript(text: str, language: str | None) -> str:
    """``text`` with whitespace collapsed and leading fillers of ``language`` removed.

    >>> normalize_transcript("Okay, und wie ist denn die Temperatur im Wintergarten?", "de-DE")
    'wie ist die Temperatur im Wintergarten?'
    >>> normalize_transcript("Okay.", "en")
    'Okay.'
    """
    collapsed = " ".join(text.split())
    key = language_key(language)
    pattern = _PATTERNS.get(key)
    if pattern is None:
        return collapsed
    result = collapsed
    while match := pattern.match(result):
        result = result[match.end() :].lstrip(_STRIP)
    if not result:
        return collapsed
    if key == "de":
        result = _GERMAN_QUESTION.sub(r"\1 ist ", result, count=1)
    return result

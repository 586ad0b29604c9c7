"""Whisper's language codes, and normalization of what clients send (``de-DE`` -> ``de``)."""

from __future__ import annotations

import functools

from voxhelm.errors import InvalidInput


@functools.cache
def whisper_languages() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def normalize_language(language: str | None) -> str | None:
    """Return the Whisper code for ``language`` (None stays None) or raise InvalidInput."""
    if language is None:
        return None
    code = language.strip().lower().replace("_", "-").split("-", 1)[0]
    if code in whisper_languages():
        return code
    raise InvalidInput(
        f"Unsupported language '{language}'. Use an ISO 639-1 code such as en or de.",
        param="language",
        code="unsupported_language",
    )

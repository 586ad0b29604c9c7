"""Whisper's language codes, and normalization of what clients send (``de-DE`` -> ``de``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

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


NAMES: Mapping[str, str] = MappingProxyType(
    {
        "af": "afrikaans",
        "am": "amharic",
        "ar": "arabic",
        "as": "assamese",
        "az": "azerbaijani",
        "ba": "bashkir",
        "be": "belarusian",
        "bg": "bulgarian",
        "bn": "bengali",
        "bo": "tibetan",
        "br": "breton",
        "bs": "bosnian",
        "ca": "catalan",
        "cs": "czech",
        "cy": "welsh",
        "da": "danish",
        "de": "german",
        "el": "greek",
        "en": "english",
        "es": "spanish",
        "et": "estonian",
        "eu": "basque",
        "fa": "persian",
        "fi": "finnish",
        "fo": "faroese",
        "fr": "french",
        "gl": "galician",
        "gu": "gujarati",
        "ha": "hausa",
        "haw": "hawaiian",
        "he": "hebrew",
        "hi": "hindi",
        "hr": "croatian",
        "ht": "haitian creole",
        "hu": "hungarian",
        "hy": "armenian",
        "id": "indonesian",
        "is": "icelandic",
        "it": "italian",
        "ja": "japanese",
        "jw": "javanese",
        "ka": "georgian",
        "kk": "kazakh",
        "km": "khmer",
        "kn": "kannada",
        "ko": "korean",
        "la": "latin",
        "lb": "luxembourgish",
        "ln": "lingala",
        "lo": "lao",
        "lt": "lithuanian",
        "lv": "latvian",
        "mg": "malagasy",
        "mi": "maori",
        "mk": "macedonian",
        "ml": "malayalam",
        "mn": "mongolian",
        "mr": "marathi",
        "ms": "malay",
        "mt": "maltese",
        "my": "myanmar",
        "ne": "nepali",
        "nl": "dutch",
        "nn": "nynorsk",
        "no": "norwegian",
        "oc": "occitan",
        "pa": "punjabi",
        "pl": "polish",
        "ps": "pashto",
        "pt": "portuguese",
        "ro": "romanian",
        "ru": "russian",
        "sa": "sanskrit",
        "sd": "sindhi",
        "si": "sinhala",
        "sk": "slovak",
        "sl": "slovenian",
        "sn": "shona",
        "so": "somali",
        "sq": "albanian",
        "sr": "serbian",
        "su": "sundanese",
        "sv": "swedish",
        "sw": "swahili",
        "ta": "tamil",
        "te": "telugu",
        "tg": "tajik",
        "th": "thai",
        "tk": "turkmen",
        "tl": "tagalog",
        "tr": "turkish",
        "tt": "tatar",
        "uk": "ukrainian",
        "ur": "urdu",
        "uz": "uzbek",
        "vi": "vietnamese",
        "yi": "yiddish",
        "yo": "yoruba",
        "yue": "cantonese",
        "zh": "chinese",
    }
)
"""Whisper's language codes and the names OpenAI's ``verbose_json`` answers (``english``)."""


def language_name(code: str) -> str:
    """The name OpenAI's API gives the language ``code`` (``en`` -> ``english``); a code
    Whisper does not know (an engine reported something else) is returned as it is."""
    return NAMES.get(code, code)


_CODES = MappingProxyType({name: code for code, name in NAMES.items()})


def language_code(language: str) -> str:
    """The code for a language an engine reported: ``english`` (as OpenAI's ``verbose_json``
    answers, and WhisperKit's server) -> ``en``; a code, or anything else, as it is."""
    return _CODES.get(language.strip().lower(), language.strip())

"""The voice catalog: which voices are offered, which is the default, and what a request gets.

Resolution of a requested ``voice`` (and ``language``), in order:

1. an installed voice name, exactly, else ignoring case;
2. an OpenAI voice name (``alloy``, ``nova``, ...): the voice for the language (step 4);
3. a key of ``VOXHELM_PIPER_LANGUAGE_VOICES`` (the reference accepted a language there);
4. anything else is :class:`~voxhelm.errors.InvalidInput` (HTTP 400, ``param=voice``).
   The reference answered a 500 here.

With no voice (or an OpenAI name), the ``language`` picks: its entry in
``VOXHELM_PIPER_LANGUAGE_VOICES`` (``de-DE`` and ``de_DE`` are the same key and fall back to
``de``), else an installed voice of that language; then ``VOXHELM_PIPER_DEFAULT_VOICE``;
then the first installed voice (the bundled one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from voxhelm.config import TtsConfig
from voxhelm.errors import InvalidInput, ServiceUnavailable
from voxhelm.tts.base import Voice

logger = logging.getLogger("voxhelm.tts")

OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
"""OpenAI's voice names: each maps to the default (or language-mapped) voice."""


def language_key(language: str) -> str:
    """``de-DE`` -> ``de_de``: the form map keys and requests are compared in."""
    return language.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class VoiceCatalog:
    """The installed voices and the rules that pick one for a request."""

    voices: tuple[Voice, ...]
    default: Voice | None  # None only when no voice is installed at all
    language_voices: dict[str, str] = field(default_factory=dict)  # language key -> voice

    @classmethod
    def build(cls, voices: list[Voice], config: TtsConfig) -> VoiceCatalog:
        """The catalog of ``voices`` under the ``VOXHELM_PIPER_*`` settings of ``config``."""
        catalog = cls(tuple(voices), voices[0] if voices else None, {})
        default = catalog.get(config.piper_default_voice) if config.piper_default_voice else None
        if config.piper_default_voice and default is None:
            logger.warning(
                "tts: VOXHELM_PIPER_DEFAULT_VOICE=%s is not installed; using %s",
                config.piper_default_voice,
                catalog.default.name if catalog.default else "nothing",
            )
        language_voices = {language_key(k): v for k, v in config.piper_language_voices.items()}
        return cls(catalog.voices, default or catalog.default, language_voices)

    def get(self, name: str) -> Voice | None:
        """The voice called ``name`` (exactly, else ignoring case), or None."""
        exact = next((voice for voice in self.voices if voice.name == name), None)
        folded = (voice for voice in self.voices if voice.name.casefold() == name.casefold())
        return exact or next(folded, None)

    def names(self) -> list[str]:
        return [voice.name for voice in self.voices]

    def aliases(self, voice: Voice) -> list[str]:
        """The OpenAI names that select ``voice`` when no language is asked for."""
        return list(OPENAI_VOICES) if voice == self.default else []

    def for_language(self, language: str | None) -> Voice | None:
        """The voice for ``language``: mapped, else one of that language, else the default."""
        if language:
            key = language_key(language)
            family = key.split("_")[0]
            for candidate in (key, family):
                mapped = self.language_voices.get(candidate)
                voice = self.get(mapped) if mapped else None
                if voice is not None:
                    return voice
            # The default first, so a German default wins over another German voice.
            ranked = [v for v in (self.default, *self.voices) if v is not None]
            for candidate in (key, family):
                for voice in ranked:
                    if candidate in (language_key(voice.language), voice.family):
                        return voice
        return self.default

    def resolve(self, requested: str | None, language: str | None = None) -> Voice:
        """The voice for a request; see the module docstring for the order.

        Raises :class:`InvalidInput` (``param=voice``) for a name that is none of the above,
        and :class:`~voxhelm.errors.ServiceUnavailable` when no voice is installed.
        """
        if self.default is None:
            raise ServiceUnavailable(
                "No text-to-speech voice is installed on this server.", code="tts_unavailable"
            )
        name = (requested or "").strip()
        if name:
            voice = self.get(name)
            if voice is not None:
                return voice
            if name.casefold() in OPENAI_VOICES:
                return self.for_language(language) or self.default
            mapped = self.language_voices.get(language_key(name))
            voice = self.get(mapped) if mapped else None
            if voice is not None:
                return voice
            raise InvalidInput(
                f"Unknown voice '{name[:100]}'. Available voices: {', '.join(self.names())} "
                f"(OpenAI voice names such as alloy select the default voice).",
                param="voice",
                code="unknown_voice",
            )
        return self.for_language(language) or self.default

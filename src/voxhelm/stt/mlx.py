"""mlx-whisper engine (Apple Silicon only), and the payload normalizer it shares with WhisperKit.

``mlx_whisper`` is imported lazily: it exists only on macOS arm64 (the dependency carries
that marker), so everywhere else this backend is unavailable and says why.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import platform
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voxhelm.audio import Audio
from voxhelm.config import MlxConfig, is_apple_silicon
from voxhelm.stt.base import Backend, TranscriptionFailed, TranscriptionRequest
from voxhelm.stt.languages import language_code
from voxhelm.transcript import Segment, Transcript, Word

logger = logging.getLogger("voxhelm.stt")


def public_model_name(configured: str) -> str:
    """The model name shown to clients: a Hugging Face repo id as is, a local path's last part."""
    if configured.startswith(("/", ".", "~")):
        return Path(configured).expanduser().name or configured
    return configured


def _seconds(value: Any, default: float) -> float:
    """``value`` as finite seconds, or ``default`` (payloads are not trusted to be numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    number = float(value)
    return number if math.isfinite(number) else default


def _optional_float(value: Any) -> float | None:
    number = _seconds(value, math.nan)
    return None if math.isnan(number) else number


def _words(raw: Any) -> tuple[Word, ...]:
    if not isinstance(raw, list):
        return ()
    words = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("word"), str):
            continue
        start = _seconds(item.get("start"), 0.0)
        words.append(
            Word(
                start=start,
                end=_seconds(item.get("end"), start),
                word=item["word"],
                probability=_optional_float(item.get("probability")),
            )
        )
    return tuple(words)


def _segment(index: int, raw: Mapping[str, Any]) -> Segment | None:
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    raw_id = raw.get("id")
    start = _seconds(raw.get("start"), 0.0)
    end = _seconds(raw.get("end"), start) or start
    seek = raw.get("seek")
    tokens = raw.get("tokens")
    # A backend's own "speaker" key is dropped on purpose: speakers come from diarization.
    return Segment(
        id=raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else index,
        start=start,
        end=end,
        text=text.strip(),
        seek=seek if isinstance(seek, int) and not isinstance(seek, bool) else None,
        avg_logprob=_optional_float(raw.get("avg_logprob")),
        compression_ratio=_optional_float(raw.get("compression_ratio")),
        no_speech_prob=_optional_float(raw.get("no_speech_prob")),
        temperature=_optional_float(raw.get("temperature")),
        tokens=tuple(t for t in tokens if isinstance(t, int)) if isinstance(tokens, list) else (),
        words=_words(raw.get("words")),
    )


def transcript_from_payload(
    payload: Mapping[str, Any],
    *,
    duration: float | None,
    backend: str,
    model: str,
    task: str = "transcribe",
) -> Transcript:
    """Normalize a Whisper-shaped result dict (mlx-whisper, OpenAI ``verbose_json``).

    ``text`` is stripped; ``language`` is kept only when it is a non-empty string, as a code
    (an OpenAI-compatible server answers ``english``). Segments
    without text are skipped; ``id`` defaults to the list index, ``start`` to 0 and ``end``
    to ``start`` (also when it is 0). When there is text but no segment, one segment
    ``0.0-0.0`` holding the whole text is made up so that every format has something to show.
    """
    text = payload.get("text")
    text = text.strip() if isinstance(text, str) else ""
    language = payload.get("language")
    raw_segments = payload.get("segments")
    segments: list[Segment] = []
    for index, raw in enumerate(raw_segments if isinstance(raw_segments, list) else []):
        segment = _segment(index, raw) if isinstance(raw, Mapping) else None
        if segment is not None:
            segments.append(segment)
    if not segments and text:
        segments = [Segment(id=0, start=0.0, end=0.0, text=text)]
    return Transcript(
        text=text,
        language=(language_code(language) or None) if isinstance(language, str) else None,
        duration=duration,
        segments=tuple(segments),
        backend=backend,
        model=model,
        task=task,
    )


class MlxBackend(Backend):
    name = "mlx"
    supports_word_timestamps = True
    supports_translation = True

    def __init__(self, config: MlxConfig) -> None:
        super().__init__(public_model_name(config.model))
        self.config = config
        # mlx-whisper keeps one model in a module global and runs on the one GPU: calls from
        # several inference threads would race on both, so they take turns.
        self._lock = threading.Lock()

    def check(self) -> list[str]:
        if not is_apple_silicon():
            return [
                "mlx-whisper runs only on macOS with Apple Silicon "
                f"(this machine is {platform.system()} {platform.machine()}). "
                "Choose another VOXHELM_STT_BACKEND."
            ]
        if importlib.util.find_spec("mlx_whisper") is None:
            return ["mlx-whisper is not installed. Install the project dependencies first."]
        return []

    def transcribe(self, audio: Audio, request: TranscriptionRequest) -> Transcript:
        self.refuse_unsupported(request)  # raises BackendUnavailable off Apple Silicon
        mlx_whisper = importlib.import_module("mlx_whisper")
        options: dict[str, Any] = {}
        if request.temperature:
            options["temperature"] = request.temperature
        with self._lock:
            try:
                # mlx-whisper takes the 16 kHz float32 samples directly: no file, no ffmpeg.
                payload = mlx_whisper.transcribe(
                    audio.samples,
                    path_or_hf_repo=self.config.model,
                    initial_prompt=request.prompt or None,
                    language=request.language,
                    word_timestamps=request.word_timestamps,
                    condition_on_previous_text=self.config.condition_on_previous_text,
                    task=request.task,
                    **options,
                )
            except Exception as exc:
                raise TranscriptionFailed(f"mlx-whisper failed: {exc}") from exc
        if not isinstance(payload, Mapping):
            raise TranscriptionFailed(f"mlx-whisper returned {type(payload).__name__}, not a dict")
        return transcript_from_payload(
            payload,
            duration=audio.duration,
            backend=self.name,
            model=self.model,
            task=request.task,
        )

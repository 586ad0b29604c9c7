"""The ``stt_debug`` log line (``VOXHELM_STT_DEBUG_LOGGING``): one per transcription.

It is for operators tuning engines: what came in, which engine and model served it, how
fast, and the first words of the result. It never holds a path or a credential; the prompt
and transcript are cut short.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, BinaryIO

from voxhelm.audio import Audio, probe
from voxhelm.errors import UnsupportedMedia
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.stt")

PROMPT_CHARS = 160
TRANSCRIPT_CHARS = 300


def preview(text: str | None, limit: int) -> str | None:
    """``text`` stripped; longer than ``limit`` it is cut, right-stripped and ends in ``...``."""
    if text is None:
        return None
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + "..."


def audio_shape(audio: Audio, source: Path | BinaryIO | bytes | None = None) -> dict[str, Any]:
    """The decoded audio's size and, when ``source`` is given, the input's bytes and format.

    Only sizes and the container's format name are read from ``source``, never its name.
    """
    shape: dict[str, Any] = {
        "duration_seconds": round(audio.duration, 3),
        "sample_rate": audio.sample_rate,
        "samples": len(audio.samples),
    }
    if source is None:
        return shape
    try:
        if isinstance(source, Path):
            shape["input_bytes"] = source.stat().st_size
        elif isinstance(source, bytes):
            shape["input_bytes"] = len(source)
        else:
            shape["input_bytes"] = source.seek(0, io.SEEK_END)
            source.seek(0)
        shape["input_format"] = probe(source).format_name
    except (OSError, UnsupportedMedia):
        pass  # the line is diagnostics; it must never fail a transcription
    return shape


def record(
    *,
    source: str,
    audio: dict[str, Any],
    requested_model: str,
    request: TranscriptionRequest,
    transcript: Transcript,
    seconds: float,
) -> dict[str, Any]:
    """The fields of one ``stt_debug`` line (``seconds`` is the wall time of the engine call)."""
    duration = audio.get("duration_seconds")
    return {
        "source": source,
        "audio_shape": audio,
        "backend": transcript.backend,
        "model": {"requested": requested_model, "resolved": transcript.model},
        "language": {"requested": request.language, "resolved": transcript.language},
        "prompt": preview(request.prompt, PROMPT_CHARS),
        "transcript": preview(transcript.text, TRANSCRIPT_CHARS),
        "duration_ms": round(seconds * 1000),
        "realtime_factor": (
            round(duration / seconds, 2) if isinstance(duration, float) and seconds > 0 else None
        ),
    }


def format_line(fields: dict[str, Any]) -> str:
    return "stt_debug " + json.dumps(fields, sort_keys=True, ensure_ascii=False)


def emit(
    source: str,
    *,
    audio: dict[str, Any],
    requested_model: str,
    request: TranscriptionRequest,
    transcript: Transcript,
    seconds: float,
) -> None:
    """Log one ``stt_debug`` line on ``voxhelm.stt`` at WARNING (so default levels show it)."""
    fields = record(
        source=source,
        audio=audio,
        requested_model=requested_model,
        request=request,
        transcript=transcript,
        seconds=seconds,
    )
    logger.warning("%s", format_line(fields))

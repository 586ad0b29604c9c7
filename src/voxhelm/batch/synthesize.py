"""The work of one synthesis job: speak the text, encode it in every requested format, and
hand each file to the sink. Shared by the local pipeline and ``voxhelm-remote-worker``."""

from __future__ import annotations

import time
from typing import Any

from voxhelm import capacity, tts
from voxhelm.batch.request import SynthesisRequest
from voxhelm.batch.sink import ENCODING, SYNTHESIZING, Artifact, Sink
from voxhelm.config import Config
from voxhelm.encode import MIME_TYPES, encode

SPEECH_FORMATS = ("wav", "mp3", "ogg", "opus", "flac", "aac")
SYNTHESIZE = 10  # percent when synthesis starts
ENCODE = 80  # percent when encoding starts


def speech_artifact(fmt: str) -> Artifact:
    """What the speech file of format ``fmt`` is stored as."""
    return Artifact(f"speech.{fmt}", f"speech_{fmt}", fmt, MIME_TYPES[fmt], exposed=True)


def synthesize_speech(
    request: SynthesisRequest, language: str | None, sink: Sink, config: Config
) -> tuple[str, dict[str, Any]]:
    """Speak ``request`` and store every format through ``sink``; returns the (empty) result
    text and the worker's metadata: backend, model, voice, language and timings."""
    started = time.monotonic()
    sink.checkpoint(SYNTHESIZING, SYNTHESIZE)
    speech = tts.synthesize(
        request.text,
        config=config,
        voice=request.voice,
        speed=request.speed,
        language=language,
        admission=capacity.BATCH,
    )
    for index, fmt in enumerate(request.formats):
        sink.put(
            speech_artifact(fmt),
            encode(speech.audio.samples, speech.audio.sample_rate, fmt),
            phase=ENCODING,
            percent=ENCODE + index * (99 - ENCODE) // len(request.formats),
        )
    metadata = {
        "backend": "piper",
        "model": "piper",
        "voice": speech.voice.name,
        "language": speech.language,
        "duration_seconds": round(speech.audio.duration, 3),
        "processing_seconds": round(time.monotonic() - started, 3),
    }
    return "", metadata

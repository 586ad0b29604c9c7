"""One batch transcription of a local media file, framework-free: keep the source → decode
(a video's extracted audio kept too) → transcribe → diarize when asked → render every
requested format.

The server's job pipeline (``voxhelm.jobs.pipeline``) and ``voxhelm-remote-worker`` both
run exactly these steps; they differ only in their :class:`Sink`: the pipeline records
progress on the job and writes artifacts to the active store, the remote worker beats its
lease and uploads under its attempt prefix. A sink's ``checkpoint`` may raise to stop the
run (the job was canceled, the lease was lost, the worker is shutting down).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxhelm import audio, capacity
from voxhelm.batch.request import JobRequest
from voxhelm.config import Config
from voxhelm.diarization.step import Sink, diarize
from voxhelm.fetch import FetchedFile
from voxhelm.formats import ARTIFACT_FORMATS, render_artifact
from voxhelm.jobs.inputs import source_artifact_name
from voxhelm.stt import chunks
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.transcript import Transcript

__all__ = ["Outcome", "Sink", "transcribe_media"]

OCTET_STREAM = "application/octet-stream"
EXTRACTED_AUDIO = "extracted-audio.wav"

# Job phases (voxhelm.jobs.models.JobPhase values).
DOWNLOADING = "downloading"
DECODING = "decoding"
TRANSCRIBING = "transcribing"
RENDERING = "rendering"

# Percent reached when each step starts. Transcription dominates the run time; it advances
# from TRANSCRIBE to RENDER window by window (long audio: over all its chunks).
STORE_SOURCE = 5
DECODE = 8
STORE_EXTRACTED = 12
TRANSCRIBE = 15
RENDER = 90


@dataclass(frozen=True)
class Outcome:
    """The transcript and what the job's metadata needs from the run."""

    transcript: Transcript
    duration_seconds: float
    processing_seconds: float
    source_content_type: str
    known_speaker_summary: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return self.transcript.text


def transcribe_media(
    fetched: FetchedFile, request: JobRequest, sink: Sink, config: Config, workdir: Path
) -> Outcome:
    """Run every step on the media file ``fetched`` (the caller downloaded or copied it)."""
    started = time.monotonic()
    content_type = fetched.content_type or OCTET_STREAM
    sink.put(
        source_artifact_name(fetched),
        fetched.path,
        kind="source",
        format="",
        content_type=content_type,
        exposed=False,
        phase=DOWNLOADING,
        percent=STORE_SOURCE,
    )
    sink.checkpoint(DECODING, DECODE)
    info = audio.probe(fetched.path)
    decoded = audio.decode(fetched.path, max_seconds=config.limits.max_audio_seconds)
    if info.has_video:
        sink.put(
            EXTRACTED_AUDIO,
            audio.write_wav(decoded, workdir / EXTRACTED_AUDIO),
            kind="extracted_audio",
            format="wav",
            content_type="audio/wav",
            exposed=False,
            phase=DECODING,
            percent=STORE_EXTRACTED,
        )
    sink.checkpoint(TRANSCRIBING, TRANSCRIBE)
    diarization = request.outputs.diarization
    options = TranscriptionRequest(
        language=request.language or None,
        prompt=request.prompt or None,
        word_timestamps=diarization.wants_word_timestamps,
    )

    def report(progress: chunks.Progress) -> None:
        percent = TRANSCRIBE + int((RENDER - TRANSCRIBE) * progress.fraction)
        sink.checkpoint(TRANSCRIBING, percent, progress.eta_seconds)

    transcript = chunks.transcribe(
        decoded,
        request.model,
        options,
        config,
        admission=capacity.BATCH,
        checkpoints=sink,
        report=report,
    )
    diarized = diarize(diarization, sink, decoded, transcript, config)
    render(diarized.transcript, request.outputs.formats, sink)
    return Outcome(
        transcript=diarized.transcript,
        duration_seconds=round(decoded.duration, 3),
        processing_seconds=round(time.monotonic() - started, 3),
        source_content_type=content_type,
        known_speaker_summary=diarized.known_speaker_summary,
    )


def render(transcript: Transcript, formats: tuple[str, ...], sink: Sink) -> None:
    """Store every requested format as an exposed artifact."""
    for index, key in enumerate(formats):
        spec = ARTIFACT_FORMATS[key]
        sink.put(
            spec.name,
            render_artifact(transcript, key),
            kind=spec.kind,
            format=key,
            content_type=spec.content_type,
            exposed=True,
            phase=RENDERING,
            percent=RENDER + index * (99 - RENDER) // len(formats),
        )

"""One batch transcription of a local media file, framework-free: keep the source → decode
(a video's extracted audio kept too) → transcribe → diarize when asked → render every
requested format.

Three callers run exactly these steps: the server's job pipeline (``voxhelm.jobs.pipeline``),
the console's run at once (the same pipeline, waiting only as long as a page may), and
``voxhelm-remote-worker``. They differ only in their :class:`~voxhelm.batch.sink.Sink`: the
pipeline records progress on the job and writes artifacts to the active store, the remote
worker beats its lease and uploads under its attempt prefix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxhelm import audio, capacity
from voxhelm.batch.diarize import diarize
from voxhelm.batch.inputs import source_artifact_name
from voxhelm.batch.request import JobRequest
from voxhelm.batch.sink import (
    DECODE,
    DECODING,
    DOWNLOADING,
    EXTRACTED,
    EXTRACTED_AUDIO,
    LAST,
    OCTET_STREAM,
    RENDER,
    RENDERING,
    STORE_EXTRACTED,
    STORE_SOURCE,
    TRANSCRIBE,
    TRANSCRIBING,
    Artifact,
    Sink,
)
from voxhelm.config import Config
from voxhelm.fetch import FetchedFile
from voxhelm.formats import ARTIFACT_FORMATS, render_artifact
from voxhelm.stt import chunks
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.transcript import Transcript

__all__ = ["Outcome", "transcribe_media"]


@dataclass(frozen=True)
class Outcome:
    """The transcript and what the job's metadata needs from the run."""

    transcript: Transcript
    duration_seconds: float
    processing_seconds: float
    source_name: str
    source_content_type: str
    known_speaker_summary: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return self.transcript.text

    def metadata(
        self, requested_model: str, language: str | None, *, since: float | None = None
    ) -> dict[str, Any]:
        """The result metadata every caller reports (the server adds where the input came
        from); ``since``: when the caller's attempt began, if it counts its download too."""
        transcript = self.transcript
        processing = self.processing_seconds
        if since is not None:
            processing = round(time.monotonic() - since, 3)
        return {
            "backend": transcript.backend,
            "requested_model": requested_model,
            "model": transcript.model,
            "language": transcript.language or language or None,
            "duration_seconds": self.duration_seconds,
            "processing_seconds": processing,
        }


def transcribe_media(
    fetched: FetchedFile,
    request: JobRequest,
    sink: Sink,
    config: Config,
    workdir: Path,
    *,
    admission: capacity.Admission = capacity.BATCH,
    decoded: audio.Audio | None = None,
) -> Outcome:
    """Run every step on the media file ``fetched`` (the caller downloaded or copied it).

    ``admission``: how long a window or the diarization may wait for its lane (a job waits
    long, a console page only the configured lane wait); ``decoded``: the file's audio when
    the caller has already decoded it (within the same caps).
    """
    started = time.monotonic()
    content_type = fetched.content_type or OCTET_STREAM
    source = Artifact(source_artifact_name(fetched), "source", "", content_type, exposed=False)
    sink.put(source, fetched.path, phase=DOWNLOADING, percent=STORE_SOURCE)
    sink.checkpoint(DECODING, DECODE)
    info = audio.probe(fetched.path)
    if decoded is None:
        decoded = audio.decode(fetched.path, max_seconds=config.limits.max_audio_seconds)
    if info.has_video:
        wav = audio.write_wav(decoded, workdir / EXTRACTED_AUDIO)
        sink.put(EXTRACTED, wav, phase=DECODING, percent=STORE_EXTRACTED)
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
        admission=admission,
        checkpoints=sink,
        report=report,
    )
    diarized = diarize(diarization, sink, decoded, transcript, config, admission=admission)
    render(diarized.transcript, request.outputs.formats, sink)
    return Outcome(
        transcript=diarized.transcript,
        duration_seconds=round(decoded.duration, 3),
        processing_seconds=round(time.monotonic() - started, 3),
        source_name=fetched.filename,
        source_content_type=content_type,
        known_speaker_summary=diarized.known_speaker_summary,
    )


def render(transcript: Transcript, formats: tuple[str, ...], sink: Sink) -> None:
    """Store every requested format as an exposed artifact."""
    for index, key in enumerate(formats):
        spec = ARTIFACT_FORMATS[key]
        sink.put(
            Artifact(spec.name, spec.kind, key, spec.content_type, exposed=True),
            render_artifact(transcript, key),
            phase=RENDERING,
            percent=RENDER + index * (LAST - RENDER) // len(formats),
        )

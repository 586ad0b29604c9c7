"""Where the batch core reports to: the :class:`Sink` protocol, the phases and the percent
each step starts at, and the names of what it stores.

Two sinks exist: the server's ``voxhelm.jobs.pipeline.Attempt`` (progress on the job row,
artifacts in the active store; a console run at once is such an attempt too) and the remote
worker's ``UploadSink`` (lease beats, uploads under the attempt's prefix). A sink's
``checkpoint`` may raise to stop the run: the job was canceled, the lease was lost, the worker
is shutting down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

# Job phases (``voxhelm.jobs.choices.JobPhase`` takes its values from here).
DOWNLOADING = "downloading"
DECODING = "decoding"
TRANSCRIBING = "transcribing"
DIARIZING = "diarizing"
RENDERING = "rendering"

# Percent reached when each step starts. Transcription dominates the run time; it advances
# from TRANSCRIBE to RENDER window by window (long audio: over all its chunks).
STORE_SOURCE = 5
DECODE = 8
STORE_EXTRACTED = 12
TRANSCRIBE = 15
DIARIZE = 90  # transcription has just reached it
RENDER = 90
LAST = 99  # the last render; a sink's completion takes it to 100

OCTET_STREAM = "application/octet-stream"
EXTRACTED_AUDIO = "extracted-audio.wav"


class Sink(Protocol):
    """Progress, chunk checkpoints and artifacts of one run."""

    def checkpoint(self, phase: str, percent: int, eta_seconds: float | None = None) -> None: ...

    def load_checkpoint(self, name: str) -> bytes | None: ...

    def save_checkpoint(self, name: str, data: bytes) -> None: ...

    def put(
        self,
        name: str,
        data: bytes | Path,
        *,
        kind: str,
        format: str,
        content_type: str,
        exposed: bool,
        phase: str,
        percent: int,
    ) -> None: ...

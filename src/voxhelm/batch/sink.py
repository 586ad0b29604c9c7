"""Where the batch core reports to: the :class:`Sink` base class, the phases and the percent
each step starts at, and the names of what it stores.

Two sinks exist: the server's ``voxhelm.jobs.pipeline.Attempt`` (progress on the job row,
artifacts in the active store; a console run at once is such an attempt too) and the remote
worker's ``UploadSink`` (lease beats, uploads under the attempt's prefix). A sink's
``checkpoint`` may raise to stop the run: the job was canceled, the lease was lost, the worker
is shutting down.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from voxhelm.stt.chunks import Checkpoints

# Job phases (``voxhelm.jobs.choices.JobPhase`` takes its values from here).
DOWNLOADING = "downloading"
DECODING = "decoding"
TRANSCRIBING = "transcribing"
DIARIZING = "diarizing"
RENDERING = "rendering"
SYNTHESIZING = "synthesizing"
ENCODING = "encoding"

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


@dataclass(frozen=True)
class Artifact:
    """What an artifact is, beside its bytes."""

    name: str
    kind: str
    format: str
    content_type: str
    exposed: bool


EXTRACTED = Artifact(EXTRACTED_AUDIO, "extracted_audio", "wav", "audio/wav", exposed=False)
"""A video's audio track, kept beside its source."""


class Sink(ABC):
    """Progress, chunk checkpoints and artifacts of one run. Chunk checkpoints live in
    ``checkpoints``; every stored artifact is a progress checkpoint first. A subclass says how
    progress is reported (:meth:`checkpoint`, which raises to stop the run) and where an
    artifact goes (:meth:`keep`)."""

    def __init__(self, checkpoints: Checkpoints) -> None:
        self._checkpoints = checkpoints

    @abstractmethod
    def checkpoint(self, phase: str, percent: int, eta_seconds: float | None = None) -> None: ...

    @abstractmethod
    def keep(self, artifact: Artifact, data: bytes | Path) -> None: ...

    def load_checkpoint(self, name: str) -> bytes | None:
        return self._checkpoints.load_checkpoint(name)

    def save_checkpoint(self, name: str, data: bytes) -> None:
        self._checkpoints.save_checkpoint(name, data)

    def put(self, artifact: Artifact, data: bytes | Path, *, phase: str, percent: int) -> None:
        self.checkpoint(phase, percent)  # stops here if the run must stop, before the write
        self.keep(artifact, data)

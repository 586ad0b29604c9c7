"""The diarization engines' interface: speaker turns, count hints, errors and the ABC."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import ClassVar

from voxhelm.audio import Audio
from voxhelm.errors import VoxhelmError


class DiarizationError(VoxhelmError):
    """Diarization was requested and could not be done; the message is safe for clients."""

    code = "diarization_failed"


class DiarizationFault(DiarizationError):
    """The engine itself failed (an exception inside it, a result of the wrong shape): the
    server's fault, not the audio's."""


class DiarizationUnavailable(DiarizationError):
    """The configured engine cannot run here (missing extra, token, model or device)."""

    code = "diarization_unavailable"


@dataclass(frozen=True)
class Turn:
    """One stretch of one speaker, in seconds; ``speaker`` is the engine's own label."""

    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        """Length in seconds (0 for an empty or reversed turn)."""
        return max(0.0, self.end - self.start)


# A diarization request's vocabulary (``voxhelm.batch.request`` stores it in jobs).
COUNTS = ("num_speakers", "min_speakers", "max_speakers")
ANONYMOUS_STRATEGY = "pyannote"
KNOWN_STRATEGY = "pyannote_known_speaker"


@dataclass(frozen=True)
class SpeakerHints:
    """What the caller knows about the number of speakers (all optional, all positive).

    ``num_speakers`` is exact and excludes the bounds; the request schema enforces that and
    ``min_speakers <= max_speakers``.
    """

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def as_kwargs(self) -> dict[str, int]:
        """Only the given hints, as keyword arguments (pyannote's names)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


class Diarizer(ABC):
    """One diarization engine: who spoke when in a recording.

    Subclasses set ``name`` (the ``VOXHELM_DIARIZATION_BACKEND`` value) and the capability
    flags, and implement :meth:`diarize`. Heavy models load lazily on the first call, once
    per engine instance, behind a lock.
    """

    name: ClassVar[str]
    supports_speaker_hints: ClassVar[bool] = True
    needs_network_for_first_load: ClassVar[bool] = False

    @abstractmethod
    def diarize(self, audio: Audio, hints: SpeakerHints) -> list[Turn]:
        """Speaker turns of ``audio`` (16 kHz mono), honouring ``hints``.

        Labels are the engine's own; :func:`voxhelm.diarization.align.normalize_turns`
        renames them. Raises :class:`DiarizationError` (or its subclass
        :class:`DiarizationUnavailable`) with a client-safe message.
        """

    def check(self) -> list[str]:
        """Problems that would make this engine unavailable, each with a hint; [] if none."""
        return []

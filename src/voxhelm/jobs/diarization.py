"""The server's side of the diarization step: what a job's metadata shows about it.

The step itself (speaker labels, or the known-speaker sidecar) is framework-free and lives
in :mod:`voxhelm.diarization.step`, so that the job pipeline and ``voxhelm-remote-worker``
run the same code. Job metadata shows the request without its reference audio (no URLs,
no ranges) plus, for known speakers, the sidecar's summary.
"""

from __future__ import annotations

from typing import Any

from voxhelm.diarization.step import SPEAKERS_ARTIFACT, Diarized, diarize, speaker_turns
from voxhelm.jobs.diarization_options import public_diarization

__all__ = ["SPEAKERS_ARTIFACT", "Diarized", "diarize", "job_metadata", "speaker_turns"]


def job_metadata(request: dict[str, Any], summary: dict[str, Any] | None) -> dict[str, Any]:
    """The ``diarization`` entry of a job's result metadata (none when not requested)."""
    if not request.get("enabled"):
        return {}
    shown = public_diarization(request)
    if summary is not None:
        shown["known_speaker_summary"] = summary
    return {"diarization": shown}

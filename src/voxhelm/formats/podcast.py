"""Podcast transcript artifacts: DOTe and Podlove JSON, in the reference's exact layout."""

from __future__ import annotations

from voxhelm.formats.cues import normalized_cues
from voxhelm.formats.encoding import dump_artifact_json
from voxhelm.formats.timestamps import format_milliseconds
from voxhelm.transcript import Transcript


def render_dote(transcript: Transcript) -> bytes:
    """DOTe: ``{"lines": [{"startTime", "endTime", "speakerDesignation", "text"}]}``.

    Times are ``HH:MM:SS,mmm``; ``speakerDesignation`` is the speaker or ``""``. Built from the
    normalized segments; indent 2, ASCII-escaped.
    """
    lines = [
        {
            "startTime": format_milliseconds(cue.start_ms, ","),
            "endTime": format_milliseconds(cue.end_ms, ","),
            "speakerDesignation": cue.speaker,
            "text": cue.text,
        }
        for cue in normalized_cues(transcript)
    ]
    return dump_artifact_json({"lines": lines})


def render_podlove(transcript: Transcript) -> bytes:
    """Podlove: ``{"version": 1, "transcripts": [{"start", "start_ms", "end", "end_ms",
    "speaker", "voice", "text"}]}``.

    Times are ``HH:MM:SS.mmm`` plus integer milliseconds; ``speaker`` and ``voice`` are both
    the speaker or ``""``. Built from the normalized segments; indent 2, ASCII-escaped.
    """
    transcripts = [
        {
            "start": format_milliseconds(cue.start_ms),
            "start_ms": cue.start_ms,
            "end": format_milliseconds(cue.end_ms),
            "end_ms": cue.end_ms,
            "speaker": cue.speaker,
            "voice": cue.speaker,
            "text": cue.text,
        }
        for cue in normalized_cues(transcript)
    ]
    return dump_artifact_json({"version": 1, "transcripts": transcripts})

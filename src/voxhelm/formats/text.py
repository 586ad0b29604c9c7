"""Plain-text output: the transcript text alone."""

from __future__ import annotations

from voxhelm.transcript import Transcript


def render_text(transcript: Transcript) -> bytes:
    """The transcript text, stripped, UTF-8, with no trailing newline (``transcript.txt``)."""
    return transcript.text.strip().encode("utf-8")

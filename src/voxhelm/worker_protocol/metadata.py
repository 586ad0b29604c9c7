"""What of a worker's ``result_metadata`` reaches producers: typed scalars only.

Kept from the worker: the strings ``backend``, ``model`` and ``language`` (trimmed,
non-empty, at most 256 characters, not URL-like) and the numbers ``duration_seconds`` and
``processing_seconds`` (finite, not negative, not booleans). For known-speaker jobs a few
typed fields of ``diarization.known_speaker_summary``. Everything else is dropped: nested
values, URLs, non-finite numbers. Source fields are the server's own (the submitted URL,
the staged file's name and type), never the worker's. Framework-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from voxhelm.errors import InvalidInput

MAX_TEXT = 256
TEXT_FIELDS = ("backend", "model", "language")
NUMBER_FIELDS = ("duration_seconds", "processing_seconds")
SUMMARY_TEXT = ("strategy", "embedding_model", "embedding_version")
SUMMARY_COUNTS = ("segment_count", "confident_segment_count", "uncertain_segment_count")
SUMMARY_NUMBERS = (
    "min_segment_duration",
    "auto_accept_margin",
    "min_top_similarity",
    "margin_median",
)


def is_url_like(text: str) -> bool:
    """``://`` anywhere, a leading ``//``, or a ``/``, ``?`` or ``#`` with a ``.`` or ``:``
    before the first of them (``cdn.host/x`` is URL-like; ``mlx-community/whisper`` and
    ``audio/mpeg`` are not)."""
    if "://" in text or text.startswith("//"):
        return True
    cut = min((text.find(ch) for ch in "/?#" if ch in text), default=-1)
    return cut >= 0 and any(ch in text[:cut] for ch in ".:")


def clean_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_TEXT or is_url_like(text):
        return None
    return text


def clean_number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def clean_count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def worker_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """The worker's own fields that survive sanitization."""
    return {
        **_kept(metadata, TEXT_FIELDS, clean_text),
        **_kept(metadata, NUMBER_FIELDS, clean_number),
    }


def _kept(
    source: dict[str, Any], keys: Iterable[str], clean: Callable[[object], object | None]
) -> dict[str, Any]:
    """``key → clean(source[key])`` for each of ``keys`` whose value survives cleaning."""
    kept: dict[str, Any] = {}
    for key in keys:
        value = clean(source.get(key))
        if value is not None:
            kept[key] = value
    return kept


def known_speaker_summary(metadata: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The sanitized ``diarization.known_speaker_summary``; it must be there (else 400).

    ``known_speakers`` and ``confident_speaker_distribution`` keep only the job's configured
    speaker names (the distribution with non-negative integer counts).
    """
    diarization = metadata.get("diarization")
    summary = diarization.get("known_speaker_summary") if isinstance(diarization, dict) else None
    if not isinstance(summary, dict):
        raise InvalidInput(
            "Known-speaker completions require result_metadata.diarization."
            "known_speaker_summary to be an object.",
            param="result_metadata",
        )
    kept: dict[str, Any] = {
        **_kept(summary, SUMMARY_TEXT, clean_text),
        **_kept(summary, SUMMARY_COUNTS, clean_count),
        **_kept(summary, SUMMARY_NUMBERS, clean_number),
    }
    speakers = summary.get("known_speakers")
    if isinstance(speakers, list):
        kept["known_speakers"] = [name for name in speakers if name in names]
    distribution = summary.get("confident_speaker_distribution")
    if isinstance(distribution, dict):
        kept["confident_speaker_distribution"] = {
            name: count
            for name, count in distribution.items()
            if name in names and clean_count(count) is not None
        }
    if isinstance(summary.get("raw_diarization_available"), bool):
        kept["raw_diarization_available"] = summary["raw_diarization_available"]
    return kept

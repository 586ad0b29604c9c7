"""Timestamp arithmetic and clock strings shared by every timed output format."""

from __future__ import annotations


def to_milliseconds(seconds: float) -> int:
    """Whole milliseconds as the reference computes them: ``max(round(seconds * 1000), 0)``.

    ``round`` is Python's round-half-even on the float product, so 0.0025 s gives 2 ms and
    0.0015 s gives 2 ms; negative times clamp to 0.
    """
    return max(round(seconds * 1000), 0)


def format_milliseconds(milliseconds: int, separator: str = ".") -> str:
    """``HH:MM:SS<separator>mmm``; hours have at least two digits and grow past 99."""
    milliseconds = max(milliseconds, 0)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def format_timestamp(seconds: float, separator: str = ".") -> str:
    """Seconds as a clock string: ``.`` for WebVTT and Podlove, ``,`` for SRT and DOTe.

    360000 s gives ``100:00:00.000``.
    """
    return format_milliseconds(to_milliseconds(seconds), separator)

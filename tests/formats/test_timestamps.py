"""Millisecond rounding and clock strings shared by every timed format."""

from __future__ import annotations

import pytest

from voxhelm.formats import render
from voxhelm.formats.timestamps import format_milliseconds, format_timestamp, to_milliseconds
from voxhelm.transcript import Segment, Transcript


@pytest.mark.parametrize(
    ("seconds", "milliseconds"),
    [
        (0.0, 0),
        (1.5, 1500),
        (0.0005, 0),  # 0.5 ms rounds half to even: 0
        (0.0015, 2),  # 1.5 ms rounds half to even: 2
        (0.0025, 2),  # 2.5 ms rounds half to even: 2
        (0.0035, 4),
        (3.2496, 3250),
        (-0.2, 0),
        (-1e-9, 0),
    ],
)
def test_it_rounds_to_milliseconds_half_to_even_and_clamps_negatives(
    seconds: float, milliseconds: int
) -> None:
    assert to_milliseconds(seconds) == milliseconds


def test_it_uses_the_separator_of_the_format() -> None:
    assert format_timestamp(62.345) == "00:01:02.345"
    assert format_timestamp(62.345, ",") == "00:01:02,345"


def test_it_pads_hours_to_two_digits() -> None:
    assert format_timestamp(3600 * 7 + 61.001) == "07:01:01.001"


def test_it_lets_hours_grow_past_two_digits() -> None:
    assert format_timestamp(360000) == "100:00:00.000"
    assert format_milliseconds(360_000_000 + 59_999, ",") == "100:00:59,999"


def test_it_clamps_negative_timestamps_to_zero() -> None:
    assert format_timestamp(-5.0) == "00:00:00.000"
    assert format_milliseconds(-1) == "00:00:00.000"


def test_it_truncates_start_times_into_seek() -> None:
    assert Segment(0, 0.29, 1.0, "x").seek_frames == 28
    assert Segment(0, 1.5, 2.0, "x").seek_frames == 150
    assert Segment(0, 1.5, 2.0, "x", seek=3000).seek_frames == 3000


def test_it_renders_timestamps_beyond_99_hours_in_every_timed_format() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 360000.0, 360001.5, "late")], language="en", duration=None
    )
    assert b"100:00:00.000 --> 100:00:01.500" in render(transcript, "vtt").body
    assert b"100:00:00,000 --> 100:00:01,500" in render(transcript, "srt").body
    assert b'"startTime": "100:00:00,000"' in render(transcript, "dote").body
    podlove = render(transcript, "podlove").body
    assert b'"start": "100:00:00.000"' in podlove
    assert b'"start_ms": 360000000' in podlove


def test_it_renders_half_milliseconds_half_to_even_in_formats() -> None:
    transcript = Transcript.from_segments(
        [Segment(0, 0.0025, 0.0035, "tick")], language="en", duration=None
    )
    assert b"00:00:00.002 --> 00:00:00.004" in render(transcript, "vtt").body

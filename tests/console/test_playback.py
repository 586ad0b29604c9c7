"""Byte ranges for the audio player, and how the console words durations."""

from __future__ import annotations

import pytest

from voxhelm.console.listing import clock, duration_text
from voxhelm.console.playback import parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-", (0, 999)),
        ("bytes=100-199", (100, 199)),
        ("bytes=900-5000", (900, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=0-1,5-9", None),  # several ranges: the whole body is a valid answer
        ("items=0-1", None),
    ],
)
def test_it_reads_a_single_byte_range(header: str | None, expected: object) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-4", "bytes=-0"])
def test_it_refuses_ranges_outside_the_body(header: str) -> None:
    with pytest.raises(ValueError):
        parse_range(header, 1000)


def test_it_words_durations_and_clock_times() -> None:
    assert duration_text(600) == "10 minutes"
    assert duration_text(60) == "1 minute"
    assert duration_text(20) == "20 seconds"
    assert clock(62.9) == "1:02"
    assert clock(3723) == "1:02:03"

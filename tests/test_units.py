"""Sizes in limit messages: the largest unit a size fills, one decimal, never "0 MiB"."""

from __future__ import annotations

import pytest

from voxhelm.units import human_bytes


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1000, "1000 bytes"),
        (1024, "1 KiB"),
        (100_000, "97.7 KiB"),  # VOXHELM_MAX_UPLOAD_BYTES=100000 once read "0 MiB"
        (25 * 1024 * 1024, "25 MiB"),
        (512 * 1024 * 1024 + 1, "512 MiB"),
        (3 * 1024**3 // 2, "1.5 GiB"),
    ],
)
def test_a_size_reads_in_the_unit_it_fills(count: int, shown: str) -> None:
    assert human_bytes(count) == shown


@pytest.mark.parametrize("count", [1, 512, 1023, 1025, 100_000, 1024**2 - 1, 1024**3 - 1])
def test_no_size_above_zero_reads_as_zero(count: int) -> None:
    value = human_bytes(count).split()[0]
    assert float(value) > 0

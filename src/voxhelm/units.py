"""Sizes in the units people read: ``97.7 KiB``, ``25 MiB``; never rounded down to zero."""

from __future__ import annotations

_UNITS = ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"))


def human_bytes(count: int) -> str:
    """``count`` bytes in the largest binary unit it fills, with at most one decimal."""
    for size, unit in _UNITS:
        if count >= size:
            value = round(count / size, 1)
            return f"{value:g} {unit}"
    return f"{count} bytes" if count != 1 else "1 byte"

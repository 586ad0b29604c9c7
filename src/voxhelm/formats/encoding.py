"""How JSON bodies are serialized: the reference's exact separators, indent and ASCII escaping."""

from __future__ import annotations

import json
import math
from typing import Any


def dump_response_json(payload: Any) -> bytes:
    """A sync response body: ``json.dumps`` default separators, no indent, ASCII-escaped."""
    return json.dumps(payload, ensure_ascii=True, allow_nan=False).encode("ascii")


def dump_artifact_json(payload: Any) -> bytes:
    """A batch artifact body: indent 2, ASCII-escaped (``ü`` → ``\\u00fc``), no trailing newline."""
    return json.dumps(payload, ensure_ascii=True, indent=2, allow_nan=False).encode("ascii")


def finite_or(value: float | None, default: float) -> float:
    """``value`` as a float, or ``default`` when it is missing, NaN or infinite (invalid JSON)."""
    if value is None or not math.isfinite(value):
        return default
    return float(value)

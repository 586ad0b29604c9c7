"""Secrets generated once and kept in a file (mode 0600): the embedded default's keys."""

from __future__ import annotations

import secrets
from pathlib import Path


def read_or_create_secret(path: Path, nbytes: int = 48) -> str:
    """Return the secret kept in ``path``, creating it (mode 0600) on first use."""
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    # Exclusive create: two processes starting at once must not both write different keys.
    try:
        handle = path.open("x", encoding="utf-8")
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with handle:
        path.chmod(0o600)
        handle.write(value + "\n")
    return value

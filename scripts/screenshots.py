"""Regenerate the console screenshots in docs/screenshots/ (login, console, transcript).

Runs the browser tests, which save a screenshot of each main page when CONSOLE_SCREENSHOTS
names a folder: ``uv run python scripts/screenshots.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ, CONSOLE_SCREENSHOTS=str(ROOT / "docs" / "screenshots"))
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/console/test_browser.py",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 - our own test run


if __name__ == "__main__":
    raise SystemExit(main())

"""Regenerate the console screenshots in docs/screenshots/ (login, console, transcript,
upload, error-413, console-mobile, transcript-speakers, segment-edit, speakers, search).

Runs the browser test files one after another, which save a screenshot of each main page
when CONSOLE_SCREENSHOTS names a folder: ``uv run python scripts/screenshots.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROWSER_TESTS = (
    "tests/console/test_browser.py",
    "tests/console/test_browser_uploads.py",
    "tests/console/test_browser_speakers.py",
    "tests/console/test_browser_reading.py",
)


def main() -> int:
    env = dict(os.environ, CONSOLE_SCREENSHOTS=str(ROOT / "docs" / "screenshots"))
    status = 0
    for tests in BROWSER_TESTS:
        command = [sys.executable, "-m", "pytest", tests, "-q", "-p", "no:cacheprovider"]
        # Each file runs even if one before failed; any failure is the script's status.
        status = subprocess.call(command, cwd=ROOT, env=env) or status  # noqa: S603 - our tests
    return status


if __name__ == "__main__":
    raise SystemExit(main())

"""Real Chromium for the console tests: the system's ``chromium`` driven by Playwright.

Playwright's own browser download cannot work here, so it launches the Debian package
(``.ci/run`` installs it). Also: keyboard helpers, the axe-core check and screenshots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

VENDOR = Path(__file__).parent / "vendor"
AXE = VENDOR / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS_ENV = "CONSOLE_SCREENSHOTS"  # a folder: scripts/screenshots.py sets it


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("The console tests need the Debian package 'chromium' (see .ci/run).")
    return path


def tab_to(page: Page, selector: str, *, limit: int = 60, backwards: bool = False) -> None:
    """Press Tab until the element matching ``selector`` has the focus (keyboard only)."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    bad = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not bad, "\n".join(bad)


def screenshot(page: Page, name: str) -> None:
    """Save ``name``.png for the docs when ``CONSOLE_SCREENSHOTS`` names a folder."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

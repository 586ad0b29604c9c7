"""Search and the reading view in real Chromium against a real ``voxhelm serve``.

Search: real speech transcribed by the real model, found from the console's search box; the
hit opens the transcript with the player at the segment. The reading view: a transcript
whose fragments break mid-sentence (seeded: Whisper's cuts cannot be chosen) reads as one
paragraph of whole sentences; a sentence plays from its time, and the highlight follows.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess, process_env
from tests.console.browser import assert_accessible, screenshot, tab_to
from tests.console.conftest import OPERATOR, OPERATOR_PASSWORD
from tests.speech import passage

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SPLIT_SENTENCES = (
    "It is the duty of a government to do prudently in his power to do for them.",
    "The people agree with that.",
    "Next question, please.",
)


def sign_in(page: Page) -> None:
    page.goto("/")
    page.fill("#id_username", OPERATOR)
    page.fill("#id_password", OPERATOR_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Submit Transcript")).to_be_visible()


def player_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def seed(server: ServerProcess, tmp_path: Path, segments: list[dict[str, Any]]) -> str:
    """A succeeded job of the operator in the server's own database (tests/console/seeded.py)."""
    wav = passage(SPLIT_SENTENCES).write_wav(tmp_path / "duty.wav")
    env = process_env(
        server.var_dir.parent,
        {
            "SEED_OPERATOR": OPERATOR,
            "SEED_WAV": str(wav),
            "SEED_NAME": "duty.wav",
            "SEED_SEGMENTS": json.dumps(segments),
        },
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "voxhelm.cli",
            "manage",
            "shell",
            "-c",
            "from tests.console.seeded import main; main()",
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_search_hit_opens_the_transcript_playing_from_its_segment(
    page: Page, tmp_path: Path
) -> None:
    wav = passage().write_wav(tmp_path / "search-me.wav")
    sign_in(page)
    page.set_input_files("#id_audio_file", str(wav))
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r"/transcripts/[0-9a-f-]{36}$"), timeout=120_000)
    job_id = page.url.rsplit("/", 1)[-1]

    tab_to(page, "nav.sections a[href='/search']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Search Transcripts")).to_be_visible()
    tab_to(page, "#search-q")
    page.keyboard.type('" * - (')  # nothing to search for: said so, not a crash
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("The search query has no words to search for.")
    assert_accessible(page)

    page.fill("#search-q", "garden door")
    page.keyboard.press("Enter")
    hit = page.locator(f"a.hit-link[href^='/transcripts/{job_id}#t=']").first
    expect(hit).to_be_visible()
    snippet = hit.locator("xpath=following-sibling::p[1]")
    expect(snippet.locator("mark")).to_have_text(["garden", "door"])
    assert_accessible(page)
    screenshot(page, "search")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing overflows
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 860})
    start = float((hit.get_attribute("href") or "").rsplit("#t=", 1)[1])
    assert start > 1.0  # the second sentence, not the recording's start

    hit.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/transcripts/{job_id}#t="))
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.6"
    )
    page.evaluate("document.getElementById('player').pause()")
    assert start - 0.05 <= player_time(page) < start + 0.6
    current = page.locator("a.sentence[aria-current='true']")
    expect(current).to_have_count(1)
    expect(current).to_contain_text("garden")
    assert_accessible(page)


def test_fragments_cut_mid_sentence_read_as_a_paragraph_that_plays_by_sentence(
    page: Page, console_server: ServerProcess, tmp_path: Path
) -> None:
    duration = passage(SPLIT_SENTENCES).duration
    third = duration / 3
    segments = [  # as Whisper cuts: at the window, not at the sentence
        {"start": 0.0, "end": third, "text": " It is the duty of a government to do prudently in"},
        {"start": third, "end": 2 * third, "text": " his power to do for them. The people"},
        {"start": 2 * third, "end": duration, "text": " agree with that. Next question, please."},
    ]
    job_id = seed(console_server, tmp_path, segments)
    sign_in(page)
    page.goto(f"/transcripts/{job_id}")
    expect(page.locator(".paragraph")).to_have_count(1)
    sentences = page.locator("a.sentence")
    expect(sentences).to_have_text(list(SPLIT_SENTENCES))
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert_accessible(page)

    second = sentences.nth(1)
    second_start = float(second.get_attribute("data-start") or "0")
    assert third < second_start < 2 * third  # inside the fragment that holds it
    second.click()
    expect(second).to_have_attribute("aria-current", "true")
    assert page.url.endswith(f"#t={second_start:.3f}")
    assert second_start - 0.05 <= player_time(page) < second_start + 1.5

    # Playing on, the highlight moves to the next sentence by itself.
    last = sentences.nth(2)
    last_start = float(last.get_attribute("data-start") or "0")
    page.wait_for_function(
        f"document.getElementById('player').currentTime > {last_start + 0.2}", timeout=30_000
    )
    expect(last).to_have_attribute("aria-current", "true")
    expect(second).not_to_have_attribute("aria-current", "true")
    page.evaluate("document.getElementById('player').pause()")

    # The keyboard: Tab to the first sentence, Enter plays from it.
    tab_to(page, ".paragraph:first-child a.sentence:first-child", backwards=True)
    page.keyboard.press("Enter")
    expect(sentences.nth(0)).to_have_attribute("aria-current", "true")
    assert player_time(page) < second_start
    page.evaluate("document.getElementById('player').pause()")
    assert_accessible(page)

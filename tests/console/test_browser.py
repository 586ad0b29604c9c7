"""The console in real Chromium against a real ``voxhelm serve``: keyboard, audio, axe-core.

Each action is done with the keyboard alone (Tab to the control, then Enter or Space) unless
the test is about the mouse; every main page passes axe-core without serious violations.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.browser import assert_accessible, screenshot, tab_to
from tests.console.conftest import LOCKOUT_OPERATOR, OPERATOR, OPERATOR_PASSWORD
from tests.jobs.media_server import MediaServer
from tests.media import speech_in
from tests.speech import EPISODE, passage, word_error_rate

pytestmark = pytest.mark.slow


def sign_in_with_keyboard(page: Page, username: str, password: str) -> None:
    page.goto("/")
    tab_to(page, "#id_username")
    page.keyboard.type(username)
    tab_to(page, "#id_password")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_load_state()


def signed_in(page: Page) -> Page:
    sign_in_with_keyboard(page, OPERATOR, OPERATOR_PASSWORD)
    expect(page.get_by_role("heading", name="Submit Transcript")).to_be_visible()
    return page


def test_it_refuses_a_wrong_password_then_signs_in(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "login")
    sign_in_with_keyboard(page, OPERATOR, "not the password")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    assert_accessible(page)
    signed_in(page)
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["sessionid"]["httpOnly"] and cookies["sessionid"]["sameSite"] == "Lax"


def test_it_locks_out_after_five_failures(chromium: Any, console_server: Any) -> None:
    # The address comes through X-Forwarded-For (uvicorn trusts it from loopback, as from a
    # proxy), so this lockout does not reach the other tests' browser at 127.0.0.1.
    context = chromium.new_context(
        base_url=console_server.url, extra_http_headers={"X-Forwarded-For": "198.51.100.7"}
    )
    page = context.new_page()
    try:
        for _ in range(4):
            sign_in_with_keyboard(page, LOCKOUT_OPERATOR, "guess")
            expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
        sign_in_with_keyboard(page, LOCKOUT_OPERATOR, "guess")
        locked = "Too many failed sign-in attempts. Try again in 15 minutes."
        expect(page.get_by_role("alert")).to_have_text(locked)
        sign_in_with_keyboard(page, LOCKOUT_OPERATOR, OPERATOR_PASSWORD)
        expect(page.get_by_role("alert")).to_have_text(locked)
        expect(page.get_by_role("heading", name="Submit Transcript")).to_have_count(0)
        expect(page.locator("header .brand")).to_be_visible()  # the console's layout
        assert_accessible(page)
    finally:
        context.close()


def test_an_upload_is_transcribed_at_once_and_its_sentences_seek_the_audio(
    page: Page, tmp_path: Path
) -> None:
    speech = passage()
    wav = speech.write_wav(tmp_path / "kitchen.wav")
    signed_in(page)
    assert_accessible(page)
    tab_to(page, "#id_audio_file")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(wav))
    tab_to(page, "#submit-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/transcripts/[0-9a-f-]{36}$"), timeout=120_000)

    expect(page.get_by_role("heading", name="kitchen.wav")).to_be_visible()
    expect(page.get_by_text("Sync route")).to_be_visible()
    sentences = page.locator("a.sentence")
    assert sentences.count() >= 2
    assert word_error_rate(speech.text, " ".join(sentences.all_inner_texts())) < 0.35
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert_accessible(page)

    second = sentences.nth(1)
    start = float(second.get_attribute("data-start") or "0")
    second.click()  # the mouse
    expect(second).to_have_attribute("aria-current", "true")
    current = page.evaluate("document.getElementById('player').currentTime")
    assert start - 0.05 <= current < start + 2.0
    page.evaluate("document.getElementById('player').pause()")
    screenshot(page, "transcript")

    last = sentences.nth(sentences.count() - 1)
    last_start = float(last.get_attribute("data-start") or "0")
    tab_to(page, ".paragraph:last-child a.sentence:last-child")
    page.keyboard.press("Enter")
    expect(last).to_have_attribute("aria-current", "true")
    expect(second).not_to_have_attribute("aria-current", "true")
    assert page.evaluate("document.getElementById('player').currentTime") >= last_start - 0.05
    page.evaluate("document.getElementById('player').pause()")
    tab_to(page, ".paragraph:first-child a.sentence:first-child", backwards=True)
    page.keyboard.press("Enter")
    expect(sentences.nth(0)).to_have_attribute("aria-current", "true")

    downloads = check_downloads(page)
    assert set(downloads) == {"text", "json", "vtt", "srt", "dote", "podlove"}


def check_downloads(page: Page) -> dict[str, bytes]:
    """Download every format with the keyboard; check that each is what it says."""
    bodies: dict[str, bytes] = {}
    chips = page.locator("nav.downloads a")
    for index in range(chips.count()):
        chip = chips.nth(index)
        key = (chip.get_attribute("href") or "").rsplit("/", 1)[-1]
        chip.focus()
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        bodies[key] = Path(download.value.path()).read_bytes()
    assert bodies["vtt"].startswith(b"WEBVTT")
    assert b" --> " in bodies["srt"]
    assert json.loads(bodies["json"])["segments"]
    assert bodies["text"].strip()
    json.loads(bodies["dote"])
    json.loads(bodies["podlove"])
    return bodies


def test_long_audio_by_url_runs_as_a_batch_job_with_live_progress(
    page: Page, media_host: MediaServer
) -> None:
    speech = passage(EPISODE)
    url = media_host.add("/episode-12.wav", "audio/wav", speech.wav_bytes())
    signed_in(page)
    tab_to(page, "#id_audio_url")
    page.keyboard.type(url)
    tab_to(page, "#submit-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?job=[0-9a-f-]{36}$"))
    page.evaluate("window.sameDocument = true")  # gone if the page reloaded

    row = page.locator("li.job-selected")
    expect(row).to_contain_text("episode-12.wav")
    expect(row).to_contain_text("Batch route")
    expect(row.locator("progress")).to_have_count(1)  # queued or running: live
    assert_accessible(page)
    screenshot(page, "console")
    expect(row.get_by_text("Done")).to_be_visible(timeout=180_000)
    expect(row.locator("progress")).to_have_count(0)
    assert page.evaluate("window.sameDocument === true"), "the list must update in place"

    tab_to(page, "li.job-selected a.job-name")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/transcripts/"))
    text = " ".join(page.locator("a.sentence").all_inner_texts())
    assert word_error_rate(speech.text, text) < 0.35


def test_a_video_url_runs_as_a_batch_job_and_plays_its_audio(
    page: Page, media_host: MediaServer
) -> None:
    url = media_host.add("/clip.mp4", "video/mp4", speech_in("mp4", passage()))
    signed_in(page)
    tab_to(page, "#id_video_url")
    page.keyboard.type(url)
    tab_to(page, "#id_language")
    page.keyboard.type("en")
    tab_to(page, "#submit-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?job="))
    row = page.locator("li.job-selected")
    expect(row.get_by_text("Done")).to_be_visible(timeout=180_000)
    row.locator("a.job-name").click()
    page.wait_for_url(re.compile(r"/transcripts/"))
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    duration = page.evaluate("document.getElementById('player').duration")
    assert abs(duration - passage().duration) < 1.0  # the extracted audio track


def test_it_signs_out_with_the_keyboard(page: Page) -> None:
    signed_in(page)
    tab_to(page, "header button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    page.goto("/jobs")
    expect(page).to_have_url(re.compile(r"/\?next=/jobs$"))


def test_the_skip_link_is_the_first_stop(page: Page) -> None:
    signed_in(page)
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_static_files_and_the_upload_cap_are_served_by_the_app(console_server: Any) -> None:
    with httpx.Client(base_url=console_server.url) as client:
        css = client.get("/static/console/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert client.get("/static/console/missing.css").status_code == 404
    # A raw request: no HTTP client sends a Content-Length larger than its body.
    host, port = console_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            b"boundary=x\r\nContent-Length: 209715200\r\n\r\n--x\r\n"
        )
        chunks = []
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            chunks.append(chunk)
        answer = b"".join(chunks).decode("latin-1")
    # A visitor (no session) may send the sign-in form's 16 KiB, not an upload.
    assert answer.startswith("HTTP/1.1 413") and "16 KiB limit" in answer
    assert "/static/console/console.css" in answer  # the answer is in the console's layout

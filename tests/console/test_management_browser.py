"""Managing jobs in real Chromium against a real ``voxhelm serve``: cancel, retry, a download's
suggested file name (a non-ASCII one), delete after the confirmation page, the filter box.

Actions use the keyboard (Tab to the control, then Enter); every page passes axe-core.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.console.browser import assert_accessible, screenshot, tab_to
from tests.console.test_browser import signed_in
from tests.jobs.media_server import MediaServer
from tests.speech import EPISODE, passage

pytestmark = pytest.mark.slow


def submit_url(page: Page, url: str, field: str = "#id_audio_url") -> str:
    """Submit ``url`` from the console (an audio URL, or ``field``); the new job's id."""
    page.goto("/")
    tab_to(page, field)
    page.keyboard.type(url)
    tab_to(page, "#submit-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?job=[0-9a-f-]{36}$"))
    return page.url.rsplit("=", 1)[1]


def press(page: Page, selector: str) -> None:
    tab_to(page, selector)
    page.keyboard.press("Enter")


def test_cancel_retry_download_names_and_delete_with_confirmation(
    page: Page, media_host: MediaServer
) -> None:
    stem = f"Grüße aus Köln {uuid.uuid4().hex[:6]}"
    path = "/" + re.sub(
        r"[^A-Za-z0-9.-]", lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), f"{stem}.wav"
    )
    url = media_host.add(path, "audio/wav", passage(EPISODE).wav_bytes())
    signed_in(page)
    first = submit_url(page, url)
    row = page.locator("li.job-selected")
    expect(row.locator("a.job-name")).to_have_text(f"{stem}.wav")
    press(page, f"li.job-selected form[action='/transcripts/{first}/cancel'] button")
    expect(page.locator("div.notices .notice")).to_have_text(f"Canceled “{stem}.wav”.")
    row = page.locator("li.job", has=page.locator(f"a[href='/transcripts/{first}']"))
    expect(row.locator(".state")).to_have_text("Canceled")
    assert_accessible(page)

    press(page, f"form[action='/transcripts/{first}/retry'] button")
    page.wait_for_url(re.compile(r"/\?job=[0-9a-f-]{36}$"))
    second = page.url.rsplit("=", 1)[1]
    assert second != first
    expect(page.locator("div.notices .notice")).to_have_text(
        f"Retrying “{stem}.wav” as a batch job."
    )
    retried = page.locator("li.job-selected")
    expect(retried.get_by_text("Done")).to_be_visible(timeout=240_000)

    press(page, "li.job-selected a.job-name")
    page.wait_for_url(re.compile(rf"/transcripts/{second}$"))
    names = {}
    chips = page.locator("nav.downloads a")
    for index in range(chips.count()):
        chips.nth(index).focus()
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        names[chips.nth(index).inner_text()] = download.value.suggested_filename
    assert names == {
        "Text": f"{stem}.txt",
        "JSON": f"{stem}.json",
        "VTT": f"{stem}.vtt",
        "SRT": f"{stem}.srt",
        "DOTe": f"{stem}.dote.json",
        "Podlove": f"{stem}.podlove.json",
    }

    press(page, f"a[href='/transcripts/{second}/delete']")
    expect(page.get_by_role("heading", name=f"Delete “{stem}.wav”?")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "delete")
    press(page, ".confirm a.button")
    page.wait_for_url(re.compile(rf"/transcripts/{second}$"))  # nothing deleted
    press(page, f"a[href='/transcripts/{second}/delete']")
    page.wait_for_url(re.compile(rf"/transcripts/{second}/delete$"))
    press(page, ".confirm button.button-danger")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("div.notices .notice")).to_have_text(f"Deleted “{stem}.wav”.")
    expect(page.locator(f"a[href='/transcripts/{second}']")).to_have_count(0)
    assert page.goto(f"/transcripts/{second}").status == 404


def test_the_filter_box_narrows_the_list(page: Page, media_host: MediaServer) -> None:
    tag = uuid.uuid4().hex[:8]
    signed_in(page)
    # Video URLs run as batch jobs; missing media fails each at once.
    for name in (f"harbour-{tag}.mp4", f"meadow-{tag}.mp4"):
        submit_url(page, media_host.url(f"/{name}"), "#id_video_url")
    row = page.locator("li.job-selected")
    expect(row.locator(".state")).to_have_text("Failed", timeout=60_000)
    page.goto("/")
    tab_to(page, "#filter-q")
    page.keyboard.type(f"harbour-{tag}")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/\?q=harbour-{tag}&state=$"))
    expect(page.locator("a.job-name")).to_have_text([f"harbour-{tag}.mp4"])
    assert_accessible(page)
    screenshot(page, "console-filter")
    page.select_option("#filter-state", "succeeded")
    press(page, ".job-filter button[type=submit]")
    expect(page.locator(".empty")).to_contain_text(f"No transcripts match “harbour-{tag}”")
    press(page, ".empty a")
    expect(page.locator("#filter-q")).to_have_value("")
    expect(page.locator("a.job-name", has_text=tag)).to_have_count(2)

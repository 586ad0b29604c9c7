"""Long files from the console, its error pages and its phone layout, in real Chromium
against a real ``voxhelm serve``: a 60 MiB studio WAV is staged with a progress bar and
becomes a batch job the embedded worker finishes; without JavaScript a file over the form's
cap gets the console's 413 page; the header holds on one line at 390 px."""

from __future__ import annotations

import re
import time
import uuid
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from tests.console.browser import assert_accessible, screenshot, tab_to
from tests.console.conftest import OPERATOR, OPERATOR_PASSWORD
from tests.speech import EPISODE, SENTENCES, passage, synthesize, word_error_rate

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
STUDIO_RATE = 48_000  # a studio's WAV: 48 kHz stereo, 16 bit (192 kB a second)
CLOSING = EPISODE[-1]


def studio_wav(path: Path, size: int) -> Path:
    """Real speech at the start and a closing sentence at the end of a WAV of exactly
    ``size`` bytes, with digital silence between (the worker skips silent windows, so the
    job stays quick while the file is as large as an episode)."""
    opening, closing = passage(), synthesize(CLOSING)
    frames = (size - 44) // 4
    audio = np.zeros((frames, 2), dtype=np.int16)

    def place(samples: np.ndarray, rate: int, at: int) -> None:
        count = round(len(samples) * STUDIO_RATE / rate)
        upsampled = np.interp(
            np.arange(count) * rate / STUDIO_RATE, np.arange(len(samples)), samples
        )
        audio[at : at + count] = upsampled.astype(np.int16)[:, None]

    place(opening.samples, opening.sample_rate, STUDIO_RATE)
    place(closing.samples, closing.sample_rate, frames - 6 * STUDIO_RATE)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(STUDIO_RATE)
        out.writeframes(audio.tobytes())
    assert path.stat().st_size == size
    return path


def sign_in(page: Page) -> None:
    page.goto("/")
    page.fill("#id_username", OPERATOR)
    page.fill("#id_password", OPERATOR_PASSWORD)
    page.press("#id_password", "Enter")
    expect(page.get_by_role("heading", name="Submit Transcript")).to_be_visible()


def choose_file(page: Page, path: Path) -> None:
    tab_to(page, "#id_audio_file")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(path))


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Chromium's own network emulation, so that the upload takes seconds on loopback."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


SHOWN_VALUE = """document.getElementById('upload-progress')?.hidden === false
    ? document.getElementById('upload-bar').value : -1"""


def watch_progress(page: Page, until: re.Pattern[str], timeout: float = 120.0) -> list[int]:
    """The upload bar's values while it shows, sampled until the page moves to ``until``."""
    values: list[int] = []
    deadline = time.monotonic() + timeout
    while not until.search(page.url):
        assert time.monotonic() < deadline, f"no navigation; bar went {values}"
        try:
            value = page.evaluate(SHOWN_VALUE)
        except PlaywrightError:  # the page is navigating away
            value = -1
        if value >= 0 and (not values or values[-1] != value):
            values.append(int(value))
        time.sleep(0.05)
    return values


def test_a_60_mib_file_uploads_with_progress_and_becomes_a_finished_batch_job(
    page: Page, tmp_path: Path
) -> None:
    wav = studio_wav(tmp_path / "studio-episode.wav", 60 * MIB)
    sign_in(page)
    choose_file(page, wav)
    throttle_uploads(page, 12 * MIB)
    tab_to(page, "#submit-form button[type=submit]")
    page.keyboard.press("Enter")

    bar = page.get_by_role("progressbar", name="Uploading studio-episode.wav")
    expect(bar).to_be_visible()
    expect(page.locator("#submit-status")).to_contain_text("Uploading studio-episode.wav (60 MiB)")
    assert_accessible(page)  # mid-upload, the progress panel shown
    screenshot(page, "upload")
    values = watch_progress(page, re.compile(r"/\?job=[0-9a-f-]{36}$"))
    inside = [value for value in values if 0 < value < 100]
    assert len(set(inside)) >= 3, f"the bar did not advance: {values}"
    assert values == sorted(values), f"the bar went back: {values}"

    row = page.locator("li.job-selected")
    expect(row).to_contain_text("studio-episode.wav")
    expect(row).to_contain_text("Batch route")
    expect(page.get_by_text("Submitted as a batch job")).to_be_visible()
    assert_accessible(page)
    expect(row.get_by_text("Done")).to_be_visible(timeout=300_000)
    row.locator("a.job-name").click()
    page.wait_for_url(re.compile(r"/transcripts/"))
    sentences = page.locator("a.sentence").all_inner_texts()
    assert word_error_rate(" ".join(SENTENCES), " ".join(sentences[:-1])) < 0.35
    assert word_error_rate(CLOSING, sentences[-1]) < 0.35  # the file's last seconds arrived
    assert float(page.locator("a.sentence").last.get_attribute("data-start") or 0) > 300


STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "media-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


INLINE_SCRIPT_RUNS = """() => {
  const script = document.createElement("script");
  script.textContent = "window.inlineRan = true";
  document.head.append(script);
  return window.inlineRan === true;
}"""


def test_the_upload_script_runs_under_a_strict_content_security_policy(
    page: Page, tmp_path: Path
) -> None:
    # Voxhelm sends no CSP of its own (a proxy may); the console's pages are given a strict
    # one here, so any inline script or style, or a request elsewhere, would be refused.
    def with_csp(route: Any) -> None:
        response = route.fetch(max_redirects=0)
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": STRICT_CSP}
        )

    page.route(re.compile(r"^[^?]*/(\?.*)?$"), with_csp)
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    wav = studio_wav(tmp_path / "csp-check.wav", 26 * MIB)
    sign_in(page)
    page.goto("/")  # a redirect's target is not routed: this load carries the policy
    assert not page.evaluate(INLINE_SCRIPT_RUNS)  # the policy is in force...
    page.wait_for_timeout(200)
    assert len(refused) == 1, refused  # ...and its refusals are seen
    refused.clear()

    page.set_input_files("#id_audio_file", str(wav))
    page.click("#submit-form button[type=submit]")
    expect(page.get_by_role("progressbar", name="Uploading csp-check.wav")).to_be_visible()
    page.wait_for_url(re.compile(r"/\?job=[0-9a-f-]{36}$"), timeout=120_000)
    page.goto(page.url)  # the job list under the policy, polling while the job runs
    expect(page.locator("li.job-selected")).to_contain_text("csp-check.wav")
    page.wait_for_timeout(2000)  # a poll of the list or two
    assert refused == []


def test_without_javascript_a_file_over_the_form_cap_gets_the_console_413_page(
    chromium: Any, console_server: Any, tmp_path: Path
) -> None:
    wav = studio_wav(tmp_path / "too-big.wav", 30 * MIB)
    context = chromium.new_context(base_url=console_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page)
        expect(page.locator("#id_audio_file_helptext")).to_contain_text("Up to 25 MiB")
        page.set_input_files("#id_audio_file", str(wav))
        with page.expect_navigation() as navigation:
            page.click("#submit-form button[type=submit]")
        assert navigation.value is not None and navigation.value.status == 413
        expect(page.get_by_role("heading", name="File too large")).to_be_visible()
        expect(
            page.get_by_text("Uploaded file exceeded 25 MiB transcription limit.")
        ).to_be_visible()
        expect(page.get_by_text("uploads files up to 512 MiB")).to_be_visible()
        expect(page.locator("header .brand")).to_be_visible()  # the console's layout
        screenshot(page, "error-413")
        html = page.content()
    finally:
        context.close()
    # axe-core is a script: the same page, checked in a tab that runs scripts.
    checker = chromium.new_context(base_url=console_server.url).new_page()
    try:
        checker.goto("/static/console/console.css")  # the server's origin, for the stylesheet
        checker.set_content(html)
        expect(checker.get_by_role("heading", name="File too large")).to_be_visible()
        assert_accessible(checker)
    finally:
        checker.context.close()


def test_a_missing_transcript_is_the_console_404_page(page: Page) -> None:
    sign_in(page)
    response = page.goto(f"/transcripts/{uuid.uuid4()}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("header")).to_contain_text(f"Signed in as {OPERATOR}")
    assert_accessible(page)


def test_the_body_gate_answers_console_paths_in_the_console_layout(console_server: Any) -> None:
    with httpx.Client(base_url=console_server.url) as client:
        # A body without an operator's session, refused before it is read.
        page = client.post("/lockouts/lift", content=b"x=1", headers={"Content-Type": "text/plain"})
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
        assert "Sign in first" in page.text and "/static/console/console.css" in page.text
        # The console's upload script asks for JSON and gets the envelope.
        script = client.post("/uploads", content=b"x" * 10, headers={"Accept": "application/json"})
        assert script.status_code == 403
        assert script.json()["error"]["code"] == "not_signed_in"
        # The API keeps its own answer.
        api = client.post("/v1/uploads", content=b"x" * 10)
        assert api.status_code == 401 and api.json()["error"]["code"] == "invalid_api_key"


LINES = """(selector) => Array.from(document.querySelectorAll(selector)).map((element) => {
  // Lines of text inside the element: a fragment that starts below the bottom of the
  // previous line is a new line (glyphs of another font on one line differ in top only).
  const range = document.createRange();
  range.selectNodeContents(element);
  const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0)
    .sort((a, b) => a.top - b.top);
  let lines = 0, bottom = -Infinity;
  for (const rect of rects) {
    if (rect.top >= bottom - 1) { lines += 1; bottom = rect.bottom; }
    else bottom = Math.max(bottom, rect.bottom);
  }
  const box = element.getBoundingClientRect();
  return {text: element.textContent.trim(), lines, top: box.top, bottom: box.bottom,
          visible: box.width > 0 && getComputedStyle(element).visibility !== "hidden"};
})"""


def test_the_header_and_form_fit_a_390_px_phone(chromium: Any, console_server: Any) -> None:
    context = chromium.new_context(
        base_url=console_server.url, viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    page = context.new_page()
    try:
        sign_in(page)
        items = page.evaluate(LINES, "header .brand, header .who strong, header button")
        assert [item["text"] for item in items] == ["◖◗ Voxhelm", OPERATOR, "Log out"]
        assert all(item["lines"] == 1 for item in items), items  # no item wraps inside
        row = page.locator("header .header-row").bounding_box()
        assert row is not None
        for item in items:  # and all of them share the header's one row
            assert row["y"] <= item["top"] and item["bottom"] <= row["y"] + row["height"], item
        assert row["height"] < 70, row
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        labels = page.evaluate(LINES, "#submit-form label, #submit-form button")
        assert all(item["lines"] == 1 for item in labels if item["visible"]), labels
        assert_accessible(page)
        screenshot(page, "console-mobile")
    finally:
        context.close()

"""Speaker names and corrections in the console, in real Chromium against a real ``voxhelm
serve`` with the embedded diarization: a two-voice episode (the bundled Piper voice and an
espeak-ng voice) is uploaded with "Label speakers", a speaker renamed, a segment corrected
and a voice saved; the downloads carry the changes; every page passes axe-core and works
under a strict Content-Security-Policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess, start_server
from tests.console.browser import assert_accessible, screenshot, tab_to
from tests.console.conftest import OPERATOR, OPERATOR_PASSWORD, _bootstrap_in_process
from tests.console.test_browser_uploads import INLINE_SCRIPT_RUNS, STRICT_CSP
from tests.diarization.conversation import TWO_SPEAKERS, Line, converse, has_espeak
from tests.jobs.test_corrections import NEXT_EPISODE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not has_espeak(), reason="espeak-ng is installed by .ci/run"),
]


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Overrides the session's console server: this one diarizes (the default engine)."""
    root = tmp_path_factory.mktemp("speakers-server")
    _bootstrap_in_process(root, OPERATOR, OPERATOR_PASSWORD)
    server = start_server(
        root,
        {"VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1", "VOXHELM_CONSOLE_SYNC_MAX_SECONDS": "60"},
    )
    yield server
    server.stop()


def sign_in(page: Page) -> None:
    page.goto("/")
    page.fill("#id_username", OPERATOR)
    page.fill("#id_password", OPERATOR_PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Submit Transcript")).to_be_visible()


def upload_episode(page: Page, lines: list[Line], name: str, folder: Path) -> str:
    """Upload ``lines`` as ``name`` with "Label speakers"; the transcript page's path once
    the job has succeeded."""
    wav = folder / name
    wav.write_bytes(converse(lines).wav_bytes())
    page.goto("/")
    page.set_input_files("#id_audio_file", str(wav))
    page.check("#id_diarization")
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r"/(transcripts/|\?job=)[0-9a-f-]{36}$"), timeout=180_000)
    job_id = page.url.rsplit("/", 1)[-1].rsplit("=", 1)[-1]
    path = f"/transcripts/{job_id}"
    for _ in range(300):
        page.goto(path)
        if page.locator("#speakers").count():
            return path
        page.wait_for_timeout(1000)
    raise AssertionError(f"{name} was not transcribed in time")


@pytest.fixture(scope="module")
def transcript_path(
    chromium: Any, console_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The path of the episode's transcript page, once the job has succeeded."""
    context = chromium.new_context(base_url=console_server.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        sign_in(page)
        return upload_episode(page, TWO_SPEAKERS, "episode-7.wav", tmp_path_factory.mktemp("ep"))
    finally:
        context.close()


def test_a_renamed_speaker_is_in_the_podlove_download(page: Page, transcript_path: str) -> None:
    sign_in(page)
    page.goto(transcript_path)
    expect(page.locator(".speaker-row")).to_have_count(2)
    assert_accessible(page)
    screenshot(page, "transcript-speakers")

    tab_to(page, "#speaker-1")
    page.keyboard.press("Control+A")
    page.keyboard.type("Anna Berg")
    page.keyboard.press("Enter")  # submits the rename form
    expect(page.get_by_role("status")).to_contain_text("“Speaker 1” is now “Anna Berg”.")
    expect(page.locator("li.segment .segment-speaker").first).to_have_text("Anna Berg")
    assert_accessible(page)

    chip = page.locator("nav.downloads a", has_text="Podlove")
    with page.expect_download() as download:
        chip.click()
    assert download.value.suggested_filename == "episode-7.podlove.json"
    podlove = json.loads(Path(download.value.path()).read_bytes())["transcripts"]
    speakers = [entry["speaker"] for entry in podlove]
    assert speakers[0] == "Anna Berg" and "Speaker 1" not in speakers
    assert {"Anna Berg", "Speaker 2"} == set(speakers)


def test_a_corrected_segment_and_a_saved_voice(
    page: Page, transcript_path: str, tmp_path: Path
) -> None:
    sign_in(page)
    page.goto(transcript_path)
    page.locator("a.segment-edit").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Edit the segment at"))).to_be_visible()
    assert_accessible(page)
    screenshot(page, "segment-edit")
    page.fill("#segment-text", "Welcome back to the Voxhelm show.")
    page.click("button[type=submit]:has-text('Save the correction')")
    page.wait_for_url(re.compile(r"/transcripts/[0-9a-f-]{36}#segment-\d+$"))
    expect(page.locator("li.segment .segment-text").first).to_have_text(
        "Welcome back to the Voxhelm show."
    )
    chip = page.locator("nav.downloads a", has_text="SRT")
    with page.expect_download() as download:
        chip.click()
    assert "Welcome back to the Voxhelm show." in Path(download.value.path()).read_text()

    speaker = page.locator("#speaker-1").input_value()
    page.locator(".speaker-row").first.get_by_role("button", name=re.compile("Save voice")).click()
    expect(page.get_by_role("status")).to_contain_text(f"The voice of “{speaker}” is saved")
    page.get_by_role("link", name="Speakers").click()
    expect(page.get_by_role("heading", name="Speakers")).to_be_visible()
    expect(page.get_by_role("rowheader", name=speaker)).to_be_visible()
    assert_accessible(page)
    screenshot(page, "speakers")

    # The next episode with "Label speakers" names the saved voice by itself.
    later = upload_episode(page, NEXT_EPISODE, "episode-8.wav", tmp_path)
    page.goto(later)
    named = page.locator("li.segment .segment-speaker").all_inner_texts()
    truth = converse(NEXT_EPISODE).turns
    assert len(named) == len(truth), named
    assert [n == speaker for n in named] == [t.speaker == "piper" for t in truth], named

    page.goto("/speakers")
    page.get_by_role("button", name=f"Delete the voice of {speaker}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Deleted the voice of “{speaker}”.")
    expect(page.get_by_text("No saved voices yet.")).to_be_visible()
    assert_accessible(page)


def test_the_pages_work_under_a_strict_content_security_policy(
    page: Page, transcript_path: str
) -> None:
    def with_csp(route: Any) -> None:
        response = route.fetch(max_redirects=0)
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": STRICT_CSP}
        )

    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    sign_in(page)
    page.route(re.compile(r"/(transcripts/|speakers)"), with_csp)
    page.goto(transcript_path)
    assert not page.evaluate(INLINE_SCRIPT_RUNS)  # the policy is in force...
    page.wait_for_timeout(200)
    assert len(refused) == 1, refused  # ...and its refusals are seen
    refused.clear()
    page.fill("#speaker-2", "Ben Ødegaard")
    page.locator(".speaker-row").nth(1).get_by_role("button", name=re.compile("Rename")).click()
    expect(page.get_by_role("status")).to_contain_text("is now “Ben Ødegaard”.")
    page.goto(transcript_path)  # the redirect's target is not routed: load it with the policy
    page.locator("a.segment-edit").nth(1).click()
    page.goto(page.url)
    expect(page.locator("#segment-text")).to_be_visible()
    page.goto("/speakers")
    page.wait_for_timeout(300)
    assert refused == []

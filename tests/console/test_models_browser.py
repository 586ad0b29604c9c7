"""The Models page in real Chromium: pull a model from the stand-in Hub with the keyboard and
watch its progress bar, then remove it; axe-core on the way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess, start_server
from tests.console.browser import assert_accessible, screenshot, tab_to
from tests.console.conftest import OPERATOR, OPERATOR_PASSWORD, _bootstrap_in_process
from tests.hubserver import Hub, HubServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    with HubServer() as running:
        yield running


@pytest.fixture(scope="module")
def models_server(tmp_path_factory: pytest.TempPathFactory, hub: Hub) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("models-console")
    _bootstrap_in_process(root, OPERATOR, OPERATOR_PASSWORD)
    server = start_server(root, {"HF_ENDPOINT": hub.url, "VOXHELM_DIARIZATION_BACKEND": "none"})
    yield server
    server.stop()


@pytest.fixture
def models_page(chromium: Any, models_server: ServerProcess) -> Iterator[Page]:
    context = chromium.new_context(
        base_url=models_server.url, viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto("/")
    tab_to(page, "#id_username")
    page.keyboard.type(OPERATOR)
    tab_to(page, "#id_password")
    page.keyboard.type(OPERATOR_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Submit Transcript")).to_be_visible()
    yield page
    context.close()


def test_an_operator_pulls_a_model_watching_its_progress_then_removes_it(
    models_page: Page, hub: Hub, models_server: ServerProcess
) -> None:
    page = models_page
    tab_to(page, "a[href='/models']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    installed = page.get_by_role("table")
    expect(installed.get_by_role("rowheader", name="tiny.en")).to_be_visible()
    expect(installed.get_by_role("rowheader", name="small")).to_have_count(0)
    assert_accessible(page)

    hub.rate = 10 * 1024 * 1024  # about eight seconds: long enough to watch
    tab_to(page, "#pull-name")
    page.keyboard.type("small")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Pulling small: its progress shows below.")).to_be_visible()
    bar = page.locator("#pull-list progress")
    expect(bar).to_be_visible()
    expect(bar).to_have_accessible_name("small")
    # The bar moves while the page polls (the value read twice, growing).
    page.wait_for_function(
        "() => Number(document.querySelector('#pull-list progress')?.value) >= 10"
    )
    first = int(bar.get_attribute("value") or 0)
    page.wait_for_function(
        f"() => Number(document.querySelector('#pull-list progress')?.value) > {first}"
    )
    screenshot(page, "models-pull")
    # When the pull ends the page reloads itself and the model is in the table.
    expect(installed.get_by_role("rowheader", name="small")).to_be_visible(timeout=60_000)
    expect(page.locator("#pull-list")).to_contain_text("installed")
    assert_accessible(page)
    assert "pulling small: 100%" in models_server.log()

    tab_to(page, "button[aria-label='Remove small']")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Removed small (78.1 MB).")).to_be_visible()
    expect(installed.get_by_role("rowheader", name="small")).to_have_count(0)

"""``GET /v1/docs``: Swagger UI over the OpenAPI document, from this server's own files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Route, expect

from tests.conftest import ServerProcess
from voxhelm.console.assets import static_prefix
from voxhelm.edge.bodies import rule_for
from voxhelm.edge.rules import BodyRule

LOOPBACK = "127.0.0.1"


class Links(HTMLParser):
    """Every URL a page makes the browser load: ``src``, ``href`` and ``data-document``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "data-document") and v]


def links(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.urls


@pytest.mark.usefixtures("configure")
def test_it_serves_an_html_page_without_a_token(client: Any) -> None:
    response = client.get("/v1/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/v1/openapi.json" in links(response.content.decode())


def test_anyone_may_ask_for_it_but_not_send_a_body() -> None:
    assert rule_for("/v1/docs", static_prefix()) == BodyRule("none", "none")


@pytest.mark.slow
def test_every_url_of_the_page_answers_from_this_server(server: ServerProcess) -> None:
    html = httpx.get(f"{server.url}/v1/docs").text
    # No absolute URL at all, so nothing is loaded from another host.
    assert re.findall(r"(?:https?:)?//[\w.-]", html) == []
    urls = links(html)
    assert {url.rpartition("/")[2] for url in urls} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "docs.js",
        "openapi.json",
    }
    for url in urls:
        response = httpx.get(f"{server.url}{url}")
        assert (url, response.status_code) == (url, 200)
        assert len(response.content) > 100


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.console.browser import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.slow
def test_chromium_lists_every_operation_with_no_other_host(
    chromium: Any, server: ServerProcess
) -> None:
    context = chromium.new_context(base_url=server.url)
    context.set_default_timeout(30_000)
    elsewhere: list[str] = []

    def offline(route: Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https") and parts.hostname != LOOPBACK:
            elsewhere.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", offline)
    try:
        page = context.new_page()
        page.goto("/v1/docs")
        operations = page.locator(".opblock-summary-path")
        expect(operations.first).to_be_visible()
        shown = operations.evaluate_all("nodes => nodes.map(node => node.dataset.path)")
    finally:
        context.close()
    document = httpx.get(f"{server.url}/v1/openapi.json").json()
    assert sorted(shown) == sorted(
        path for path, methods in document["paths"].items() for _ in methods
    )
    assert elsewhere == []

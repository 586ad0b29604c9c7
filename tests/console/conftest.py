"""Fixtures for the console: operators, signed-in clients, and a real server for Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import ServerProcess
from voxhelm.config import Config
from voxhelm.console.operators import bootstrap_operator

OPERATOR = "olivia"
OPERATOR_PASSWORD = "correct horse battery"


@pytest.fixture
def console_config(configure: Callable[..., Config]) -> Config:
    return configure(
        VOXHELM_ALLOWED_URL_HOSTS="127.0.0.1:*,media.example.com",
        VOXHELM_TRUSTED_HTTP_HOSTS="127.0.0.1",
    )


@pytest.fixture
def operator(db: None) -> User:
    bootstrap_operator(OPERATOR, OPERATOR_PASSWORD)
    return User.objects.get(username=OPERATOR)


@pytest.fixture
def operator_client(client: Client, operator: User, console_config: Config) -> Client:
    # force_login: django-axes wants the request that Client.login() does not pass.
    client.force_login(operator)
    return client


@pytest.fixture
def make_client() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        other = Client()
        other.force_login(user)
        return other

    return make


def body_of(response: Any) -> bytes:
    """The body of a streamed response (an async iterator, as under ASGI)."""

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return asyncio.run(read())


def post_console(client: Client, **fields: Any) -> Any:
    """Submit the console form with the defaults a browser sends."""
    data: dict[str, Any] = {"model": "auto", "formats": ["text", "json", "vtt"]}
    data.update(fields)
    return client.post("/", data)


__all__ = ["OPERATOR", "OPERATOR_PASSWORD", "ServerProcess", "body_of", "post_console"]


# -- the real server and Chromium ----------------------------------------------------------

LOCKOUT_OPERATOR = "lena"
SYNC_MAX_SECONDS = 20  # the 10 s test passage runs at once, the 29 s episode as a batch job


def _bootstrap_in_process(root: Any, username: str, password: str) -> None:
    """``voxhelm bootstrap-operator`` as an operator would run it: the password in the
    environment, never on the command line."""
    import subprocess
    import sys

    from tests.conftest import process_env

    env = process_env(
        root,
        {
            "VOXHELM_BOOTSTRAP_OPERATOR_USERNAME": username,
            "VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD": password,
        },
    )
    subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", "bootstrap-operator"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def media_host() -> Any:
    from tests.jobs.media_server import serve_media

    with serve_media() as media:
        yield media


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``voxhelm serve`` (web and embedded batch worker) with two operators."""
    from tests.conftest import start_server

    root = tmp_path_factory.mktemp("console-server")
    _bootstrap_in_process(root, OPERATOR, OPERATOR_PASSWORD)
    _bootstrap_in_process(root, LOCKOUT_OPERATOR, OPERATOR_PASSWORD)
    server = start_server(
        root,
        {
            "VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*",
            "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1",
            "VOXHELM_CONSOLE_SYNC_MAX_SECONDS": str(SYNC_MAX_SECONDS),
            "VOXHELM_DIARIZATION_BACKEND": "none",
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Any:
    """One browser per test module. Not per session: Playwright's sync API runs an event loop
    on the main thread while it is started, which would break later tests' asyncio.run()."""
    from playwright.sync_api import expect, sync_playwright

    from tests.console.browser import CHROMIUM_ARGS, chromium_path

    # An assertion waits up to 20 s (Playwright's default is 5): on a 2-core CI machine a page
    # may load while the embedded worker transcribes. A failing assertion still fails.
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, console_server: ServerProcess) -> Any:
    context = chromium.new_context(
        base_url=console_server.url, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()

"""Error pages in the console's layout for console paths; the envelope stays under ``/v1/``."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from voxhelm.console import errors, listing


def assert_console_page(response: Any, status: int, text: str) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    page: str = response.content.decode()
    assert 'class="site-header"' in page and "/static/console/console.css" in page
    assert f"Error {status}" in page and text in page
    assert 'href="/">Back to the console' in page
    return page


def test_an_unknown_console_path_is_a_404_page_with_the_operator(operator_client: Client) -> None:
    page = assert_console_page(operator_client.get("/no-such-page"), 404, errors.NOT_FOUND)
    assert "Signed in as" in page and "Log out" in page


def test_a_foreign_transcript_is_the_same_404_page(operator_client: Client) -> None:
    response = operator_client.get("/transcripts/00000000-0000-0000-0000-000000000000")
    assert_console_page(response, 404, errors.NOT_FOUND)


def test_api_paths_keep_the_envelope(operator_client: Client) -> None:
    response = operator_client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_server_error_is_a_500_page_without_details(
    operator_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fault cannot be provoked through the console's inputs: one is put in the listing.
    def broken(producer: str) -> Any:
        raise RuntimeError("/srv/voxhelm/secret path")

    monkeypatch.setattr(listing, "recent_jobs", broken)
    operator_client.raise_request_exception = False
    page = assert_console_page(operator_client.get("/"), 500, errors.SERVER_ERROR)
    assert "secret path" not in page and "Traceback" not in page
    assert "Log out" not in page  # rendered without the request: the database may be down


def test_a_stale_form_is_a_403_page(operator_client: Client, operator: Any) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    response = browser.post("/lockouts/lift", {})
    assert_console_page(response, 403, errors.STALE_FORM)


def test_the_gate_pages_name_the_limits(console_config: Any) -> None:
    page = errors.gate_page(
        413, "File too large", "Uploaded file exceeded 25 MiB transcription limit."
    )
    assert "Error 413" in page and "25 MiB transcription limit" in page
    assert "up to 512 MiB with a progress bar" in page and 'class="site-header"' in page
    assert "Signed in as" not in page
    refusal = errors.gate_page(403, "Sign in first", "Sign in to the console before sending this.")
    assert "progress bar" not in refusal

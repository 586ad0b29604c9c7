"""Bearer authentication: constant-time matching, 401 envelope with WWW-Authenticate."""

from __future__ import annotations

from typing import Any

import pytest

from voxhelm.tokens import bearer_from_header, match_token

pytestmark = pytest.mark.usefixtures("configure")


def test_it_matches_the_label_of_a_token() -> None:
    assert match_token("b", {"one": "a", "two": "b"}) == "two"
    assert match_token("c", {"one": "a"}) is None
    assert match_token("a", {}) is None


def test_it_returns_the_first_label_when_values_repeat() -> None:
    assert match_token("a", {"one": "a", "two": "a"}) == "one"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("bearer abc", None),
        ("Basic abc", None),
        ("Bearer ", None),
        (None, None),
    ],
)
def test_it_parses_bearer_headers(header: str | None, token: str | None) -> None:
    assert bearer_from_header(header) == token


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing bearer token."),
        ({"Authorization": "Token test-token"}, "Missing bearer token."),
        ({"Authorization": "Bearer wrong"}, "Invalid bearer token."),
        ({"Authorization": "Bearer worker-token-x"}, "Invalid bearer token."),
    ],
)
def test_it_refuses_missing_and_wrong_tokens(
    client: Any, headers: dict[str, str], message: str
) -> None:
    response = client.get("/v1/health", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "error": {
            "message": message,
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_it_accepts_producer_and_worker_tokens_on_health(client: Any) -> None:
    for token in ("test-token", "other-token", "worker-token"):
        response = client.get("/v1/health", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, token


def test_it_refuses_a_worker_token_on_producer_endpoints(client: Any) -> None:
    response = client.post(
        "/v1/audio/transcriptions", headers={"Authorization": "Bearer worker-token"}
    )
    assert response.status_code == 401


def test_it_never_logs_tokens(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    client.get("/v1/health", headers={"Authorization": "Bearer not-a-real-token-123"})
    client.get("/v1/health", headers={"Authorization": "Bearer test-token"})
    assert "not-a-real-token-123" not in caplog.text
    assert "test-token" not in caplog.text

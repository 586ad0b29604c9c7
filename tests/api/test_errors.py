"""Every error under /v1/ is the OpenAI envelope with the right status."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.http import HttpRequest

from voxhelm import errors
from voxhelm.api.errors import response_for_exception
from voxhelm.diarization.base import DiarizationError, DiarizationFault, DiarizationUnavailable

pytestmark = pytest.mark.usefixtures("configure")

ENVELOPE_KEYS = {"message", "type", "param", "code"}


def envelope(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == ENVELOPE_KEYS
    return dict(body["error"])


def test_it_answers_unknown_api_paths_with_a_json_404(client: Any, auth_headers: Any) -> None:
    response = client.get("/v1/nope", headers=auth_headers)
    assert response.status_code == 404
    assert envelope(response)["code"] == "not_found"


def test_it_answers_unknown_paths_without_a_token_with_a_json_404(client: Any) -> None:
    assert client.get("/v1/jobs/not-a-uuid/whatever").status_code == 404


def test_it_answers_wrong_methods_with_a_json_405(client: Any, auth_headers: Any) -> None:
    response = client.post("/v1/health", headers=auth_headers)
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert envelope(response)["code"] == "method_not_allowed"


def test_it_keeps_html_404s_outside_the_api(client: Any) -> None:
    response = client.get("/definitely-not-here")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def request_for(path: str = "/v1/x") -> HttpRequest:
    request = HttpRequest()
    request.method = "POST"
    request.path = path
    return request


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        (errors.InvalidInput("bad", param="model"), 400, "invalid_request_error"),
        (errors.UnsupportedMedia("no audio"), 400, "invalid_request_error"),
        (errors.PayloadTooLarge("big"), 413, "invalid_request_error"),
        (errors.NotFound("gone"), 404, "invalid_request_error"),
        (errors.Conflict("clash"), 409, "conflict_error"),
        (errors.Busy("later", retry_after=3), 429, "rate_limit_error"),
        (errors.ServiceUnavailable("down"), 503, "service_unavailable_error"),
        (DiarizationError("no speakers"), 400, "invalid_request_error"),
        (DiarizationFault("engine failed"), 500, "server_error"),
        (DiarizationUnavailable("no engine"), 503, "service_unavailable_error"),
    ],
)
def test_it_maps_domain_errors_to_statuses(
    exc: errors.VoxhelmError, status: int, kind: str
) -> None:
    response = response_for_exception(request_for(), exc)
    assert response.status_code == status
    error = envelope(response)
    assert error["type"] == kind
    assert error["message"] == exc.message
    assert error["code"] == exc.code


def test_it_sets_retry_after_for_busy_errors() -> None:
    response = response_for_exception(request_for(), errors.Busy("later", retry_after=3))
    assert response["Retry-After"] == "3"


def test_it_hides_unexpected_errors_behind_a_logged_error_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="voxhelm.api")
    secret = "/srv/private/path.wav: ffmpeg said something"
    response = response_for_exception(request_for(), RuntimeError(secret))
    assert response.status_code == 500
    error = envelope(response)
    assert secret not in error["message"]
    assert "Traceback" not in error["message"]
    error_id = response["X-Voxhelm-Error-Id"]
    assert error_id in error["message"]
    assert error_id in caplog.text
    assert secret in caplog.text  # the operator still gets the details


def test_it_answers_bad_json_with_400(client: Any, auth_headers: Any) -> None:
    response = client.post(
        "/v1/audio/transcriptions",
        data=b"\xff\xfe not json",
        content_type="application/json",
        headers=auth_headers,
    )
    assert response.status_code == 400
    assert envelope(response)["message"] == "Request body was not valid JSON."

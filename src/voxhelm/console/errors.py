"""The console's error pages: Django's 400/403/404/500, a failed CSRF check and the body
gate's answers, in the console's layout (``/v1/`` paths keep the OpenAI envelope: see
``voxhelm.urls`` and ``voxhelm.api.middleware``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from voxhelm.units import human_bytes

TEMPLATE = "console/error.html"
NOT_FOUND = "There is nothing here, or it belongs to another operator."
STAFF_ONLY = "Operator access requires a staff account."
STALE_FORM = (
    "The form was open too long or its session ended. Go back, reload the page and send it again."
)
BAD_REQUEST = "The request could not be read."
SERVER_ERROR = "Something went wrong on the server; it has been logged. Try again in a moment."


def large_file_hint() -> str:
    """What to do with a file over the form's limit: the console's script stages it."""
    limits = settings.VOXHELM.limits
    return (
        f"With JavaScript on, the console uploads files up to "
        f"{human_bytes(limits.batch_max_staged_upload_bytes)} with a progress bar and runs "
        f"them as batch jobs; without it, the form takes files up to "
        f"{human_bytes(limits.max_upload_bytes)}."
    )


def _context(status: int, title: str, message: str, hint: str) -> dict[str, object]:
    return {"status": status, "title": title, "message": message, "hint": hint}


def gate_page(status: int, title: str, message: str) -> str:
    """A body-gate answer (403, 413, 507) for a console path, made before any view runs:
    rendered without a request, so the header names no operator (no session is loaded)."""
    hint = large_file_hint() if status == 413 else ""
    return render_to_string(TEMPLATE, _context(status, title, message, hint))


def error_page(
    request: HttpRequest, status: int, title: str, message: str, hint: str = ""
) -> HttpResponse:
    """An error in the console's layout, with the signed-in operator in the header."""
    return render(request, TEMPLATE, _context(status, title, message, hint), status=status)


def not_found(request: HttpRequest) -> HttpResponse:
    return error_page(request, 404, "Not found", NOT_FOUND)


def forbidden(request: HttpRequest, message: str = STAFF_ONLY) -> HttpResponse:
    return error_page(request, 403, "Not allowed", message)


def bad_request(request: HttpRequest) -> HttpResponse:
    return error_page(request, 400, "Bad request", BAD_REQUEST)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: Django's reason is for the log, not for the page."""
    return error_page(request, 403, "Form expired", STALE_FORM)


def server_error() -> HttpResponse:
    """A 500 page rendered without the request: the failure may be the database itself,
    which the header's signed-in user would need."""
    body = render_to_string(TEMPLATE, _context(500, "Server error", SERVER_ERROR, ""))
    return HttpResponse(body, status=500)

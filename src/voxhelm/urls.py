"""URL routes. Everything under ``/v1/`` answers in the OpenAI error envelope."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import defaults

from voxhelm.api.errors import not_found_response
from voxhelm.api.middleware import is_api_request
from voxhelm.api.views.health import health
from voxhelm.api.views.openapi import openapi_document
from voxhelm.api.views.transcriptions import create_transcription

urlpatterns = [
    path("v1/health", health, name="health"),
    path("v1/openapi.json", openapi_document, name="openapi"),
    path("v1/audio/transcriptions", create_transcription, name="transcriptions"),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return not_found_response()
    return defaults.page_not_found(request, exception)

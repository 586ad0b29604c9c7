"""URL routes. Everything under ``/v1/`` answers in the OpenAI error envelope."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import defaults

from voxhelm.api.errors import not_found_response
from voxhelm.api.middleware import is_api_request
from voxhelm.api.views.health import health
from voxhelm.api.views.models import list_models, retrieve_model
from voxhelm.api.views.openapi import openapi_document
from voxhelm.api.views.transcriptions import create_transcription
from voxhelm.jobs.views import cancel_job, create_job, job_artifact, job_detail

urlpatterns = [
    path("v1/health", health, name="health"),
    path("v1/openapi.json", openapi_document, name="openapi"),
    path("v1/audio/transcriptions", create_transcription, name="transcriptions"),
    path("v1/jobs", create_job, name="jobs"),
    path("v1/jobs/<uuid:job_id>", job_detail, name="job"),
    path("v1/jobs/<uuid:job_id>/cancel", cancel_job, name="job-cancel"),
    path("v1/jobs/<uuid:job_id>/artifacts/<str:name>", job_artifact, name="job-artifact"),
    path("v1/models", list_models, name="models"),
    path("v1/models/<path:model>", retrieve_model, name="model"),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return not_found_response()
    return defaults.page_not_found(request, exception)

"""URL routes. Everything under ``/v1/`` answers in the OpenAI error envelope."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views import defaults

from voxhelm.api.errors import not_found_response
from voxhelm.api.middleware import is_api_request
from voxhelm.api.views.health import health, live
from voxhelm.api.views.metrics import metrics_view
from voxhelm.api.views.models import list_models, retrieve_model
from voxhelm.api.views.openapi import docs_page, openapi_document
from voxhelm.api.views.speakers import speaker_detail, speakers
from voxhelm.api.views.speech import create_speech, list_voices
from voxhelm.api.views.transcriptions import create_transcription
from voxhelm.api.views.transcripts import job_transcript, job_transcript_original
from voxhelm.api.views.translations import create_translation
from voxhelm.console import errors as console_errors
from voxhelm.jobs.views import cancel_job, job_artifact, job_detail, jobs
from voxhelm.search.views import search_transcripts
from voxhelm.uploads.views import create_upload
from voxhelm.workers.views import (
    claim_work,
    complete_job,
    fail_job,
    job_heartbeat,
    worker_heartbeat,
)

urlpatterns = [
    path("v1/health", health, name="health"),
    path("v1/health/live", live, name="health-live"),  # no token: for probes
    path("v1/openapi.json", openapi_document, name="openapi"),
    path("v1/docs", docs_page, name="docs"),
    path("v1/audio/transcriptions", create_transcription, name="transcriptions"),
    path("v1/audio/translations", create_translation, name="translations"),
    path("v1/audio/speech", create_speech, name="speech"),
    path("v1/audio/voices", list_voices, name="voices"),
    path("v1/uploads", create_upload, name="uploads"),
    path("v1/jobs", jobs, name="jobs"),
    path("v1/jobs/<uuid:job_id>", job_detail, name="job"),
    path("v1/jobs/<uuid:job_id>/cancel", cancel_job, name="job-cancel"),
    path("v1/jobs/<uuid:job_id>/artifacts/<str:name>", job_artifact, name="job-artifact"),
    path("v1/jobs/<uuid:job_id>/transcript", job_transcript, name="job-transcript"),
    path(
        "v1/jobs/<uuid:job_id>/transcript/original",
        job_transcript_original,
        name="job-transcript-original",
    ),
    path("v1/speakers", speakers, name="speakers"),
    path("v1/speakers/<uuid:speaker_id>", speaker_detail, name="speaker"),
    path("v1/search", search_transcripts, name="search"),
    path("v1/models", list_models, name="models"),
    # Remote pull workers (worker tokens only); the edge proxy should block /v1/internal/.
    path("v1/internal/workers/heartbeat", worker_heartbeat, name="worker-heartbeat"),
    path("v1/internal/work/claim", claim_work, name="work-claim"),
    path("v1/internal/work/<uuid:job_id>/heartbeat", job_heartbeat, name="work-heartbeat"),
    path("v1/internal/work/<uuid:job_id>/complete", complete_job, name="work-complete"),
    path("v1/internal/work/<uuid:job_id>/fail", fail_job, name="work-fail"),
    path("v1/models/<path:model>", retrieve_model, name="model"),
    path("metrics", metrics_view, name="metrics"),  # VOXHELM_METRICS_TOKEN only
    path("", include("voxhelm.console.urls")),  # the operator console
]


# Error pages: the envelope under /v1/ (Django's defaults, which ApiErrorMiddleware wraps),
# the console's layout everywhere else.


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return defaults.bad_request(request, exception)
    return console_errors.bad_request(request)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return defaults.permission_denied(request, exception)
    return console_errors.forbidden(request)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return not_found_response()
    return console_errors.not_found(request)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return defaults.server_error(request)
    return console_errors.server_error()

"""Console pages: sign-in and the console at ``/``, sign-out, the job list, transcripts.

Every page but sign-in needs a signed-in staff user: anonymous visitors are sent to
``/?next=...``, other signed-in users get a 403 page. An operator only ever sees jobs
of the producer ``operator:<username>``; any other job id is a 404.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from uuid import UUID

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from voxhelm.api.errors import ApiError
from voxhelm.artifacts.models import JobArtifact
from voxhelm.console import listing
from voxhelm.console.errors import forbidden
from voxhelm.console.forms import LoginForm, SubmitForm
from voxhelm.console.lockout import current_lockouts, lift_lockouts
from voxhelm.console.operators import producer_for
from voxhelm.console.paragraphs import paragraphs
from voxhelm.console.playback import stream_response
from voxhelm.console.routing import ConsoleRequest, Options, route
from voxhelm.edge.rules import BodyKind, BodyRule, declare_body
from voxhelm.errors import VoxhelmError
from voxhelm.jobs.deletion import delete_job
from voxhelm.jobs.downloads import content_disposition, download_filename
from voxhelm.jobs.models import Job, JobType
from voxhelm.jobs.retry import retry_job
from voxhelm.jobs.staged import settle_upload

LOCKED_OUT = "Too many failed sign-in attempts. Try again in {minutes} minutes."


def _to_login(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{settings.LOGIN_URL}?next={request.path}")


def operator_view(
    methods: list[str], body: BodyKind | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Allowed methods, then a signed-in staff user (sync or async views). The body is a
    form's with POST, none without, unless ``body`` says otherwise."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        kind: BodyKind = body or ("form" if "POST" in methods else "none")
        rule = declare_body(BodyRule("operator", kind))
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                if request.method not in methods:
                    return HttpResponseNotAllowed(methods)
                user = await request.auser()
                if not user.is_authenticated:
                    return _to_login(request)
                if not user.is_staff:
                    return await sync_to_async(forbidden)(request)
                return await view(request, *args, **kwargs)

            return rule(async_wrapper)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            if not request.user.is_authenticated:
                return _to_login(request)
            if not request.user.is_staff:
                return forbidden(request)
            return view(request, *args, **kwargs)

        return rule(wrapper)

    return decorate


def own_job(request: HttpRequest, job_id: UUID | str) -> Job:
    """The signed-in operator's transcription job ``job_id``; any other is a 404."""
    job = (
        Job.objects.for_producer(producer_for(request.user))
        .filter(pk=job_id, job_type=JobType.TRANSCRIBE)
        .first()
    )
    if job is None:
        raise Http404("No such transcript.")
    return job


# -- sign-in -------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, target: str | None) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def _login_page(
    request: HttpRequest, form: LoginForm, status: int = 200, errors: tuple[str, ...] = ()
) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    errors = errors or tuple(str(error) for error in form.non_field_errors())
    context = {"form": form, "next": next_url, "errors": errors}
    return render(request, "console/login.html", context, status=status)


def _sign_in(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _login_page(request, LoginForm(request))
    form = LoginForm(request, data=request.POST)
    if form.is_valid() and form.user is not None:
        login(request, form.user)
        return HttpResponseRedirect(_safe_next(request, request.POST.get("next")))
    return _login_page(request, form)


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """django-axes' lockout answer (``AXES_LOCKOUT_CALLABLE``): the sign-in page, 429."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    errors = (LOCKED_OUT.format(minutes=minutes),)
    return _login_page(request, LoginForm(request), status=429, errors=errors)


@declare_body(BodyRule("operator", "form", visitor_body="form"))
@require_http_methods(["POST"])
def sign_out(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return _to_login(request)
    logout(request)
    return HttpResponseRedirect("/")


# -- the console ---------------------------------------------------------------------------


@declare_body(BodyRule("operator", "upload", visitor_body="sign_in"))
@require_http_methods(["GET", "POST"])
def console(request: HttpRequest) -> HttpResponseBase:
    """``/``: sign-in for visitors, the console for operators, 403 for other users."""
    if not request.user.is_authenticated:
        return _sign_in(request)
    if not request.user.is_staff:
        return forbidden(request)
    config = settings.VOXHELM
    if request.method == "POST":
        form = SubmitForm(config, request.POST, request.FILES, producer=producer_for(request.user))
        if form.is_valid():
            try:
                routed = route(_console_request(request, form), config)
            except (VoxhelmError, ApiError) as exc:
                form.add_error(None, exc.message)
            else:
                if routed.dispatch == "sync":
                    return HttpResponseRedirect(reverse("console:transcript", args=[routed.job.pk]))
                messages.info(request, "Submitted as a batch job: its progress shows below.")
                return HttpResponseRedirect(f"/?job={routed.job.pk}")
    else:
        form = SubmitForm(config)
    return render(request, "console/console.html", _console_context(request, form))


def _console_request(request: HttpRequest, form: SubmitForm) -> ConsoleRequest:
    data = form.cleaned_data
    return ConsoleRequest(
        producer=producer_for(request.user),
        kind=form.input_kind,
        url=data.get("audio_url") or data.get("video_url") or "",
        upload=data.get("audio_file"),
        staged=form.staged,
        diarization=bool(data.get("diarization")),
        options=Options(
            model=data["model"],
            language=data["language"],
            formats=data["formats"],
            submission_type=form.input_kind,
        ),
    )


def _selected(request: HttpRequest) -> str:
    try:
        return str(UUID(request.GET.get("job", "")))
    except ValueError:
        return ""


def _list_context(request: HttpRequest) -> dict[str, Any]:
    """The job list as filtered by the query string (``q``, ``state``)."""
    producer = producer_for(request.user)
    shown = listing.ListFilter.from_query(request.GET)
    jobs = listing.recent_jobs(producer, shown)
    return {
        "jobs": jobs,
        "live": any(view.live for view in jobs),
        "selected": _selected(request),
        "shown": shown,
        "states": listing.STATE_LABELS.items(),
        # An empty list says why: nothing submitted yet, or nothing that matches.
        "has_any": bool(jobs) or listing.has_jobs(producer),
    }


def _console_context(request: HttpRequest, form: SubmitForm) -> dict[str, Any]:
    return {
        "form": form,
        **_list_context(request),
        "sync_limit": listing.duration_text(settings.VOXHELM.operator.console_sync_max_seconds),
        "lockouts": current_lockouts(),
    }


@operator_view(["POST"])
def lift_sign_in_lockouts(request: HttpRequest) -> HttpResponse:
    """``POST /lockouts/lift``: forget every failed sign-in, so a locked-out client can try
    again at once (the signed-in operator decides; ``voxhelm manage axes_reset`` does the same)."""
    lift_lockouts()
    messages.info(request, "Sign-in lockouts lifted.")
    return HttpResponseRedirect("/")


@operator_view(["GET"])
def job_list(request: HttpRequest) -> HttpResponse:
    """The job list alone, which the console page polls while a job is running."""
    return render(request, "console/_jobs.html", _list_context(request))


# -- transcripts ---------------------------------------------------------------------------


@operator_view(["GET"])
def transcript(request: HttpRequest, job_id: UUID) -> HttpResponse:
    job = own_job(request, job_id)
    view = listing.describe(job)
    succeeded = job.state == "succeeded"
    segments = listing.segments(job, settings.VOXHELM) if succeeded else []
    downloads = listing.downloads(job) if succeeded else []
    return render(
        request,
        "console/transcript.html",
        {
            "view": view,
            "job": job,
            "segments": segments,
            "paragraphs": paragraphs(segments),
            "speakers": any(segment.speaker for segment in segments),
            "speaker_names": list(dict.fromkeys(s.speaker for s in segments if s.speaker)),
            "editable": any(key == "json" for key, _label in downloads),  # corrections need it
            "downloads": downloads,
            "has_audio": succeeded and _playable(job) is not None,
        },
    )


@operator_view(["GET"])
def transcript_status(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """The progress panel of one job, polled by its transcript page while it runs."""
    return render(
        request, "console/_status.html", {"view": listing.describe(own_job(request, job_id))}
    )


def _playable(job: Job) -> JobArtifact | None:
    """The audio the player gets: the extracted track of a video, else the source."""
    artifacts = job.artifacts.filter(kind__in=("extracted_audio", "source"))
    return artifacts.filter(kind="extracted_audio").first() or artifacts.first()


def _open_audio(request: HttpRequest, job_id: UUID) -> tuple[JobArtifact, Any]:
    artifact = _playable(own_job(request, job_id))
    if artifact is None:
        raise Http404("No audio.")
    return artifact, artifact.open(settings.VOXHELM.artifacts)


@operator_view(["GET", "HEAD"])
async def transcript_audio(request: HttpRequest, job_id: UUID) -> HttpResponseBase:
    """The job's audio for the page's player, with byte ranges so that it can seek."""
    artifact, stream = await sync_to_async(_open_audio)(request, job_id)
    response = stream_response(
        stream, artifact.size_bytes, artifact.content_type, request.headers.get("Range")
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _open_download(request: HttpRequest, job_id: UUID, fmt: str) -> tuple[JobArtifact, Any]:
    job = own_job(request, job_id)
    artifact = job.artifacts.exposed().filter(format=fmt).first()
    if artifact is None:
        raise Http404("No such artifact.")
    artifact.job = job  # for the download's name, without another query
    return artifact, artifact.open(settings.VOXHELM.artifacts)


@operator_view(["GET"])
async def transcript_artifact(request: HttpRequest, job_id: UUID, fmt: str) -> HttpResponseBase:
    """A transcript download: the stored bytes with the stored content type, saved under the
    source's name (``episode-42.srt``)."""
    artifact, stream = await sync_to_async(_open_download)(request, job_id, fmt)
    response = stream_response(stream, artifact.size_bytes, artifact.content_type)
    response["Content-Disposition"] = content_disposition(
        download_filename(artifact.job, artifact.name)
    )
    return response


# -- managing a job: cancel, retry, delete -------------------------------------------------


def _back(request: HttpRequest, job_id: UUID) -> HttpResponseRedirect:
    """Back to the page the form was on (its ``next``: the console or the transcript), never
    to another site."""
    target = request.POST.get("next") or reverse("console:transcript", args=[job_id])
    return HttpResponseRedirect(_safe_next(request, target))


@operator_view(["POST"])
def cancel_transcript(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """``POST /transcripts/<id>/cancel``: stop a queued or running job."""
    job = own_job(request, job_id)
    if job.cancel():
        settle_upload(job, settings.VOXHELM)  # a running attempt settles it again on exit
        messages.info(request, f"Canceled “{listing.source_name(job)}”.")
    else:
        messages.info(request, f"“{listing.source_name(job)}” had already finished.")
    return _back(request, job_id)


@operator_view(["POST"])
def retry_transcript(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """``POST /transcripts/<id>/retry``: a new batch job with a failed or canceled job's
    request; the console then shows the new job's progress."""
    job = own_job(request, job_id)
    try:
        retried = retry_job(job, settings.VOXHELM)
    except (VoxhelmError, ApiError) as exc:
        messages.error(request, exc.message)
        return _back(request, job_id)
    messages.info(request, f"Retrying “{listing.source_name(job)}” as a batch job.")
    return HttpResponseRedirect(f"/?job={retried.pk}")


@operator_view(["GET", "POST"])
def delete_transcript(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """``/transcripts/<id>/delete``: a confirmation page (GET), then the deletion (POST) of
    a finished job with its recording and every download."""
    job = own_job(request, job_id)
    view = listing.describe(job)
    if request.method == "POST":
        try:
            delete_job(job, settings.VOXHELM)
        except VoxhelmError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("console:transcript", args=[job_id]))
        messages.info(request, f"Deleted “{view.name}”.")
        return HttpResponseRedirect("/")
    return render(request, "console/delete.html", {"view": view, "job": job})

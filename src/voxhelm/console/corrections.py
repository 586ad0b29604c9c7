"""Console pages for a transcript's corrections and the speaker library: rename a speaker,
correct a segment, save a speaker's voice, list and delete saved voices.

Plain forms that post and redirect back (no script, so the console's strict
Content-Security-Policy holds); each change goes through the same code as the API
(:mod:`voxhelm.jobs.corrections`, :mod:`voxhelm.jobs.voiceprints`).
"""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from voxhelm.console.listing import clock, source_name
from voxhelm.console.operators import producer_for
from voxhelm.console.views import operator_view, own_job
from voxhelm.diarization.embedding import model_version
from voxhelm.errors import VoxhelmError
from voxhelm.jobs.corrections import Correction, correct, current
from voxhelm.jobs.models import Job
from voxhelm.jobs.transcript_schemas import MAX_SEGMENT_CHARS, clean_name, clean_text
from voxhelm.jobs.voiceprints import save_speaker
from voxhelm.studio.models import LibrarySpeaker


def _back(job_id: UUID, anchor: str = "") -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("console:transcript", args=[job_id]) + anchor)


def _apply(request: HttpRequest, job: Job, correction: Correction, done: str) -> bool:
    try:
        correct(job, correction, settings.VOXHELM)
    except VoxhelmError as exc:
        messages.error(request, exc.message)
        return False
    messages.info(request, done)
    return True


@operator_view(["POST"])
def rename_speaker(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """``POST /transcripts/<id>/speakers``: ``label`` is spoken by ``name`` from now on."""
    job = own_job(request, job_id)
    label = request.POST.get("label", "")
    try:
        name = clean_name(request.POST.get("name", ""), "The new name")
    except ValueError as exc:
        messages.error(request, str(exc))
        return _back(job_id, "#speakers")
    if name != label:
        _apply(request, job, Correction(names={label: name}), f"“{label}” is now “{name}”.")
    return _back(job_id, "#speakers")


@operator_view(["GET", "POST"])
def edit_segment(request: HttpRequest, job_id: UUID, segment_id: int) -> HttpResponse:
    """``/transcripts/<id>/segments/<n>``: a form for one segment's text and speaker."""
    job = own_job(request, job_id)
    try:
        transcript = current(job, settings.VOXHELM).transcript
    except VoxhelmError as exc:
        messages.error(request, exc.message)
        return _back(job_id)
    segment = next((s for s in transcript.segments if s.id == segment_id), None)
    if segment is None:
        raise Http404("No such segment.")
    text, speaker, errors = segment.text.strip(), segment.speaker or "", []
    if request.method == "POST":
        text = request.POST.get("text", "")
        speaker = request.POST.get("speaker", "")
        correction = Correction()
        try:
            if len(text) > MAX_SEGMENT_CHARS:
                raise ValueError(f"The text must be at most {MAX_SEGMENT_CHARS} characters.")
            texts = {segment.id: clean_text(text)}
            speakers = {segment.id: clean_name(speaker, "The speaker")} if speaker.strip() else {}
            correction = Correction(texts=texts, speakers=speakers)
        except ValueError as exc:
            errors.append(str(exc))
        saved = f"Segment at {clock(segment.start)} saved."
        if not errors and _apply(request, job, correction, saved):
            return _back(job_id, f"#segment-{segment.id}")
    context = {
        "job": job,
        "name": source_name(job),
        "segment": segment,
        "at": clock(segment.start),
        "text": text,
        "speaker": speaker,
        "speakers": transcript.speakers,
        "errors": errors,
        "max_chars": MAX_SEGMENT_CHARS,
    }
    return render(request, "console/segment.html", context, status=400 if errors else 200)


@operator_view(["POST"])
def save_voice(request: HttpRequest, job_id: UUID) -> HttpResponse:
    """``POST /transcripts/<id>/voices``: save ``speaker``'s voice in the library."""
    job = own_job(request, job_id)
    speaker = request.POST.get("speaker", "")
    try:
        voice, created = save_speaker(
            producer_for(request.user), job, speaker, speaker, settings.VOXHELM
        )
    except VoxhelmError as exc:
        messages.error(request, exc.message)
    else:
        verb = "is saved in" if created else "is replaced in"
        messages.info(request, f"The voice of “{voice.name}” {verb} your speaker library.")
    return _back(job_id, "#speakers")


@operator_view(["GET"])
def library(request: HttpRequest) -> HttpResponse:
    """``/speakers``: the operator's saved voices."""
    voices = LibrarySpeaker.objects.for_producer(producer_for(request.user))
    return render(
        request, "console/speakers.html", {"voices": voices, "current_version": model_version()}
    )


@operator_view(["POST"])
def delete_voice(request: HttpRequest, speaker_id: UUID) -> HttpResponse:
    """``POST /speakers/<id>/delete``: forget a saved voice."""
    voices = LibrarySpeaker.objects.for_producer(producer_for(request.user)).filter(pk=speaker_id)
    voice = voices.first()
    if voice is None:
        raise Http404("No such voice.")
    voices.delete()
    messages.info(request, f"Deleted the voice of “{voice.name}”.")
    return HttpResponseRedirect(reverse("console:speakers"))

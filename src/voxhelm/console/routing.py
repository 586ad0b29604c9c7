"""Where a console submission runs: at once (sync) or as a batch job, and starting it.

As the reference: an audio URL or an uploaded file runs at once, a video URL becomes a
batch job. Better than the reference: audio longer than ``VOXHELM_CONSOLE_SYNC_MAX_SECONDS``
(or too large for the sync download cap) becomes a batch job too, so the page never waits
for an hour-long episode; so does a request for speaker labels, which only batch jobs make.
A file too large for the form was staged by the page's script beforehand (``POST /uploads``,
the path and caps of ``POST /v1/uploads``) and becomes a batch job at once.

A run at once is a job too, made by ``voxhelm.jobs.submit`` as ``dispatch_mode=sync``: it
starts ``running`` on this process (one attempt, a heartbeat) and goes through the batch
core like any job (``voxhelm.jobs.pipeline.run_now``), so it has the same artifacts, appears
in the job list and has a transcript page. If the process dies mid-run, the sweeper finds
the silent job and fails it (``worker_lost``); it is never re-queued.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.files.uploadedfile import UploadedFile
from django.db import close_old_connections

from voxhelm import audio, capacity
from voxhelm.batch.inputs import sync_fetch_policy
from voxhelm.batch.request import JobOutputs, JobRequest, UploadSource, UrlSource
from voxhelm.config import Config
from voxhelm.diarization.base import KNOWN_STRATEGY
from voxhelm.diarization.embedding import model_version
from voxhelm.errors import MediaTooLong
from voxhelm.fetch import DownloadTooLarge, FetchedFile, check_url, fetch_to_file
from voxhelm.jobs.diarization_options import normalize_diarization
from voxhelm.jobs.heartbeat import worker_identity
from voxhelm.jobs.models import DispatchMode, Job
from voxhelm.jobs.pipeline import run_now
from voxhelm.jobs.submit import submit_request
from voxhelm.studio.models import LibrarySpeaker
from voxhelm.uploads.models import StagedUpload
from voxhelm.uploads.staging import stage_file
from voxhelm.workdirs import Workdir

logger = logging.getLogger("voxhelm.console")

AUDIO_URL = "audio_url"
VIDEO_URL = "video_url"
UPLOAD = "upload"


@dataclass(frozen=True)
class Options:
    model: str
    language: str  # a Whisper code, or "" to detect
    formats: list[str]
    submission_type: str  # audio_url | upload


@dataclass(frozen=True)
class ConsoleRequest:
    """One validated console submission (exactly one of ``url``, ``upload`` and ``staged``)."""

    producer: str
    kind: str  # audio_url | video_url | upload
    options: Options
    url: str = ""
    upload: UploadedFile | None = None
    staged: StagedUpload | None = None
    diarization: bool = False


@dataclass(frozen=True)
class Routed:
    job: Job
    dispatch: DispatchMode


def route(request: ConsoleRequest, config: Config) -> Routed:
    """Run or queue ``request``; raises VoxhelmError/ApiError with a message for the form."""
    if request.staged is not None:
        return Routed(submit_batch(request, config, request.staged), DispatchMode.BATCH)
    if request.kind == VIDEO_URL or (request.diarization and request.kind != UPLOAD):
        return Routed(submit_batch(request, config), DispatchMode.BATCH)
    if request.kind == AUDIO_URL:
        check_url(request.url, sync_fetch_policy(config))  # before waiting for a slot
    # Fetch, decode and inference share the bounded pool with the API's sync requests.
    pool = capacity.transcription_pool(config)
    return pool.submit(lambda: _run_on_inference_thread(request, config)).result()


def submit_batch(
    request: ConsoleRequest, config: Config, upload: StagedUpload | None = None
) -> Job:
    """Submit ``request`` (a URL, or ``upload`` staged from the console's file) as a batch job."""
    source: UrlSource | UploadSource
    if upload is not None:
        source, name = UploadSource(str(upload.pk)), upload.filename
    else:
        source, name = UrlSource(request.url), _url_name(request.url)
    return submit_request(
        request.producer,
        _job_request(request, source, config),
        config,
        context=_context(request, name),
    ).job


def _job_request(
    request: ConsoleRequest, source: UrlSource | UploadSource, config: Config
) -> JobRequest:
    options = request.options
    asked: dict[str, Any] = {"enabled": request.diarization}
    voices = _usable_voices(request.producer) if request.diarization else []
    if voices:
        # The operator's saved voices name their speakers in every new episode.
        asked.update(strategy=KNOWN_STRATEGY, known_speakers=[{"library": n} for n in voices])
    diarization = normalize_diarization(asked, backend=config.diarization.backend)
    outputs = JobOutputs(tuple(options.formats), diarization)
    return JobRequest(source, outputs, options.model, options.language or None)


def _usable_voices(producer: str) -> list[str]:
    """The names of ``producer``'s saved voices that today's speaker model can compare.

    A voice saved with other embedding weights would fail the whole job, so it is left out;
    the Speakers page marks it, and the log says which were skipped.
    """
    current = model_version()
    saved = LibrarySpeaker.objects.for_producer(producer).values_list("name", "embedding_version")
    stale = [name for name, version in saved if version != current]
    if stale:
        logger.warning(
            "%s: voices saved with another speaker model not used: %s", producer, ", ".join(stale)
        )
    return [name for name, version in saved if version == current]


def _context(request: ConsoleRequest, source_name: str) -> dict[str, str]:
    return {"submission_type": request.kind, "source_name": source_name}


def _run_on_inference_thread(request: ConsoleRequest, config: Config) -> Routed:
    try:
        with Workdir("console") as workdir:
            return _run(request, config, workdir)
    finally:
        close_old_connections()  # this pool thread's connection must not outlive the run


def _run(request: ConsoleRequest, config: Config, workdir: Path) -> Routed:
    fetched = _materialize(request, config, workdir)
    if fetched is None:
        return Routed(submit_batch(request, config), DispatchMode.BATCH)
    decoded = None if request.diarization else _decode_short(fetched.path, config)
    if decoded is None:
        if request.kind == AUDIO_URL:
            return Routed(submit_batch(request, config), DispatchMode.BATCH)
        # A long upload (or one to label with speakers) is staged and becomes a batch job.
        staged = stage_file(
            request.producer, fetched.path, fetched.filename, fetched.content_type, config
        )
        return Routed(submit_batch(request, config, staged), DispatchMode.BATCH)
    source: UrlSource | UploadSource = (
        UrlSource(request.url)
        if request.kind == AUDIO_URL
        else UploadSource(filename=fetched.filename, content_type=fetched.content_type)
    )
    job = submit_request(
        request.producer,
        _job_request(request, source, config),
        config,
        context=_context(request, fetched.filename),
        dispatch=DispatchMode.SYNC,
        worker=worker_identity(),
    ).job
    # The page waits: a window waits for its lane only as long as a sync request would.
    job = run_now(job, fetched, config, workdir, decoded=decoded, admission=capacity.SYNC)
    return Routed(job, DispatchMode.SYNC)


def _materialize(request: ConsoleRequest, config: Config, workdir: Path) -> FetchedFile | None:
    """The input as a local file (None: too large for a sync download)."""
    if request.kind == AUDIO_URL:
        try:
            return fetch_to_file(request.url, sync_fetch_policy(config), workdir)
        except DownloadTooLarge:
            return None
    upload = request.upload
    assert upload is not None
    name = PurePath(upload.name or "upload").name
    path = workdir / f"upload{_safe_suffix(name)}"
    upload.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload, out)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    size = path.stat().st_size
    return FetchedFile(path=path, filename=name, content_type=content_type, size=size, final_url="")


def _decode_short(path: Path, config: Config) -> audio.Audio | None:
    """The decoded audio if it is short enough to run at once, else None. A declared
    duration over the limit is trusted without decoding."""
    limit = min(config.operator.console_sync_max_seconds, config.limits.max_audio_seconds)
    info = audio.probe(path)
    if info.duration is not None and info.duration > limit:
        return None
    try:
        return audio.decode(path, max_seconds=limit)
    except MediaTooLong:
        return None


def _safe_suffix(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _url_name(url: str) -> str:
    return PurePath(unquote(urlsplit(url).path)).name or "input"

"""Where a console submission runs: at once (sync) or as a batch job, and starting it.

As the reference: an audio URL or an uploaded file runs at once, a video URL becomes a
batch job. Better than the reference: audio longer than ``VOXHELM_CONSOLE_SYNC_MAX_SECONDS``
(or too large for the sync download cap) becomes a batch job too, so the page never waits
for an hour-long episode; so does a request for speaker labels, which only batch jobs make.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import close_old_connections

from voxhelm import audio, capacity
from voxhelm.api.validation import parse
from voxhelm.api.views.transcriptions import sync_fetch_policy
from voxhelm.config import Config
from voxhelm.console.transcription import Options, Source, run, start_job
from voxhelm.errors import MediaTooLong
from voxhelm.fetch import DownloadTooLarge, check_url, fetch_to_file
from voxhelm.jobs.models import DispatchMode, Job, JobType
from voxhelm.jobs.schemas import JobSubmission
from voxhelm.jobs.submit import submit
from voxhelm.uploads.models import StagedUpload
from voxhelm.uploads.staging import stage_file
from voxhelm.workdirs import Workdir

AUDIO_URL = "audio_url"
VIDEO_URL = "video_url"
UPLOAD = "upload"


@dataclass(frozen=True)
class ConsoleRequest:
    """One validated console submission (exactly one of ``url`` and ``upload``)."""

    producer: str
    kind: str  # audio_url | video_url | upload
    options: Options
    url: str = ""
    upload: UploadedFile | None = None
    diarization: bool = False


@dataclass(frozen=True)
class Routed:
    job: Job
    dispatch: DispatchMode


def route(request: ConsoleRequest, config: Config) -> Routed:
    """Run or queue ``request``; raises VoxhelmError/ApiError with a message for the form."""
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
    """Submit ``request`` (a URL, or ``upload`` staged from the console's file) through the
    batch job API's own submission path."""
    options = request.options
    data: dict[str, Any] = {
        "job_type": JobType.TRANSCRIBE.value,
        "model": options.model,
        "language": options.language or None,
        "input": (
            {"kind": "upload", "upload_id": str(upload.pk)}
            if upload is not None
            else {"kind": "url", "url": request.url}
        ),
        "output": {"formats": options.formats},
        "context": {
            "submission_type": request.kind,
            "source_name": upload.filename if upload is not None else _url_name(request.url),
        },
    }
    if request.diarization:
        data["diarization"] = {"enabled": True}
    return submit(request.producer, parse(JobSubmission, data), config).job


def _run_on_inference_thread(request: ConsoleRequest, config: Config) -> Routed:
    try:
        with Workdir("console") as workdir:
            return _run(request, config, workdir)
    finally:
        close_old_connections()  # this pool thread's connection must not outlive the run


def _run(request: ConsoleRequest, config: Config, workdir: Path) -> Routed:
    source_path, source_args = _materialize(request, config, workdir)
    if source_path is None:
        return Routed(submit_batch(request, config), DispatchMode.BATCH)
    decoded, has_video = (None, False)
    if not request.diarization:
        decoded, has_video = _decode_short(source_path, config)
    if decoded is None:
        if request.kind == AUDIO_URL:
            return Routed(submit_batch(request, config), DispatchMode.BATCH)
        # A long upload (or one to label with speakers) is staged and becomes a batch job.
        staged = stage_file(
            request.producer,
            source_path,
            source_args["name"],
            source_args["content_type"],
            config,
        )
        return Routed(submit_batch(request, config, staged), DispatchMode.BATCH)
    source = Source(path=source_path, decoded=decoded, has_video=has_video, **source_args)
    job = start_job(request.producer, source, request.options, config)
    return Routed(run(job, source, config), DispatchMode.SYNC)


def _materialize(
    request: ConsoleRequest, config: Config, workdir: Path
) -> tuple[Path | None, dict[str, Any]]:
    """The input as a local file (None: too large for a sync download) and how to name it."""
    if request.kind == AUDIO_URL:
        try:
            fetched = fetch_to_file(request.url, sync_fetch_policy(config), workdir)
        except DownloadTooLarge:
            return None, {}
        return fetched.path, {
            "name": fetched.filename,
            "content_type": fetched.content_type,
            "input_data": {"kind": "url", "url": request.url},
        }
    upload = request.upload
    assert upload is not None
    name = PurePath(upload.name or "upload").name
    path = workdir / f"upload{_safe_suffix(name)}"
    upload.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload, out)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    return path, {
        "name": name,
        "content_type": content_type,
        "input_data": {"kind": "upload", "filename": name, "content_type": content_type},
    }


def _decode_short(path: Path, config: Config) -> tuple[audio.Audio | None, bool]:
    """The decoded audio if it is short enough to run at once (else None), and whether the
    file holds video. A declared duration over the limit is trusted without decoding."""
    limit = min(config.operator.console_sync_max_seconds, config.limits.max_audio_seconds)
    info = audio.probe(path)
    if info.duration is not None and info.duration > limit:
        return None, info.has_video
    try:
        return audio.decode(path, max_seconds=limit), info.has_video
    except MediaTooLong:
        return None, info.has_video


def _safe_suffix(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _url_name(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return PurePath(unquote(urlsplit(url).path)).name or "input"

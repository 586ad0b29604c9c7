"""Media inputs: the fetch policies jobs and sync requests download with, and how a job's
source copy is named."""

from __future__ import annotations

from pathlib import PurePosixPath

from voxhelm.config import Config
from voxhelm.fetch import FetchedFile, FetchPolicy, configured_policy

BATCH_ACCEPT = "audio/*;q=1.0,video/*;q=0.9,*/*;q=0.1"
SYNC_ACCEPT = "audio/*;q=1.0,video/*;q=0.5,*/*;q=0.1"

SUFFIXES_BY_TYPE = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/webm": ".webm",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "video/x-m4v": ".m4v",
}

MEDIA_SUFFIXES = frozenset(
    {*SUFFIXES_BY_TYPE.values(), ".oga", ".mpga", ".mpeg", ".mka", ".aif", ".aiff", ".caf"}
)


def batch_fetch_policy(config: Config) -> FetchPolicy:
    """The guarded fetcher's policy for job inputs: batch size cap, audio and video."""
    return configured_policy(
        config, max_bytes=config.limits.batch_max_download_bytes, accept=BATCH_ACCEPT
    )


def sync_fetch_policy(config: Config) -> FetchPolicy:
    """The policy for a URL transcribed at once (the API's sync endpoints, the console)."""
    return configured_policy(
        config, max_bytes=config.limits.max_url_download_bytes, accept=SYNC_ACCEPT
    )


def source_artifact_name(fetched: FetchedFile) -> str:
    """``source<ext>``: the job's copy of its input, named so it never collides with a
    transcript artifact (the reference used the input's own name, e.g. ``transcript.json``).

    The suffix is the URL file name's when that is a media suffix, else the content type's,
    else there is none.
    """
    suffix = PurePosixPath(fetched.filename).suffix.lower()
    if suffix not in MEDIA_SUFFIXES:
        suffix = SUFFIXES_BY_TYPE.get(fetched.content_type, "")
    return f"source{suffix}"

"""What a job's downloads are called: the source's name, and the ``Content-Disposition``.

A browser or ``curl -OJ`` saves an artifact as ``<source stem>.<artifact extension>``
(``episode-42.srt``, ``episode-42.dote.json``), not as the URL's last segment (``srt``,
``transcript.txt``). The stem is the job's source name (upload filename, or the URL's last
path segment) with anything that could break the header or a file system removed; a job
without one is called ``transcript`` (transcription) or by its id (synthesis).
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from voxhelm.batch.request import UploadSource
from voxhelm.jobs.models import Job, JobType

MAX_STEM_CHARS = 120
FORBIDDEN = frozenset('"\\/:*?<>|;')
"""Characters a file name never carries: quotes and backslashes would break the header's
quoted string, the rest are path separators or reserved on some file systems."""


def source_name(job: Job) -> str:
    """The name the producer knows the job's media by ("" when it has none)."""
    name = str(job.context_data.get("source_name") or "")
    if name or job.job_type != JobType.TRANSCRIBE:
        return name
    source = job.request.source
    if isinstance(source, UploadSource):
        return source.filename or ""
    try:
        path = urlsplit(source.url).path
    except ValueError:
        return ""
    return PurePosixPath(unquote(path)).name


def sanitize_stem(name: str) -> str:
    """``name`` without its extension, reduced to characters safe in a saved file's name:
    no control or format characters, quotes, slashes or reserved characters, no leading dots
    or trailing spaces, at most ``MAX_STEM_CHARS``; "" when nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = PurePosixPath(base).stem if "." in base.lstrip(".") else base
    spaced = "".join(" " if ch.isspace() else ch for ch in unicodedata.normalize("NFC", stem))
    kept = "".join(
        ch for ch in spaced if unicodedata.category(ch)[0] != "C" and ch not in FORBIDDEN
    )
    return " ".join(kept.split()).lstrip(".").strip()[:MAX_STEM_CHARS].strip()


def artifact_extension(artifact_name: str) -> str:
    """``transcript.dote.json`` → ``dote.json``, ``speech.mp3`` → ``mp3``: what follows the
    artifact's first dot (the format's whole extension)."""
    return artifact_name.partition(".")[2] or "bin"


def download_filename(job: Job, artifact_name: str) -> str:
    """The name a download of ``artifact_name`` of ``job`` is saved as."""
    stem = sanitize_stem(source_name(job))
    if not stem:
        stem = "transcript" if job.job_type == JobType.TRANSCRIBE else str(job.pk)
    return f"{stem}.{artifact_extension(artifact_name)}"


def content_disposition(filename: str) -> str:
    """``attachment`` with ``filename`` for every client (RFC 6266): an ASCII fallback in
    ``filename=`` and, when the name is not ASCII, the exact name in ``filename*`` (RFC 5987,
    UTF-8, percent-encoded)."""
    fallback = "".join(
        ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_"
        for ch in unicodedata.normalize("NFKD", filename)
        if not unicodedata.combining(ch)
    )
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header

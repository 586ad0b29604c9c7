"""Staging a multipart upload: the file streams from the request into the artifact store.

A Django upload handler receives the ``file`` part chunk by chunk and writes it straight to
an :class:`~voxhelm.storage.base.ObjectWriter` (a temporary file renamed into place, or an
S3 multipart upload), so nothing larger than one chunk is held in memory and no second copy
is made. The media type is decided from the name and declared type before the first byte is
stored, the first bytes are checked to be binary media rather than text (playlists, HTML),
and the size cap is enforced while the bytes arrive. Any failure aborts the write: no
partial object and no row remain.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.db import close_old_connections
from django.http import HttpRequest
from django.utils import timezone

from voxhelm.batch.inputs import MEDIA_SUFFIXES, SUFFIXES_BY_TYPE
from voxhelm.batch.sink import OCTET_STREAM
from voxhelm.config import Config
from voxhelm.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia
from voxhelm.storage.base import ObjectWriter, StoredObject
from voxhelm.storage.keys import prefixed_key
from voxhelm.storage.stores import active_store
from voxhelm.units import human_bytes
from voxhelm.uploads.models import StagedUpload

FIELD = "file"
DEFAULT_FILENAME = "upload"
MAX_FILENAME_CHARS = 200
SNIFF_BYTES = 512


@dataclass(frozen=True)
class _Incoming:
    upload_id: uuid.UUID
    filename: str
    content_type: str
    key: str


def staged_key(prefix: str, upload_id: uuid.UUID, filename: str) -> str:
    """``<prefix>/staged-inputs/<upload_id>/<filename>`` (never a leading ``/``)."""
    return prefixed_key(prefix, "staged-inputs", str(upload_id), filename)


def safe_filename(name: str | None) -> str:
    """The client's file name reduced to one harmless key segment (basename, no control
    characters, no leading dots, at most 200 characters); ``upload`` when nothing is left."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"\s+", " ", base).strip().lstrip(".")
    if len(base) > MAX_FILENAME_CHARS:
        stem, suffix = PurePosixPath(base).stem, PurePosixPath(base).suffix[:16]
        base = stem[: MAX_FILENAME_CHARS - len(suffix)] + suffix
    return base or DEFAULT_FILENAME


def check_media_type(filename: str, content_type: str) -> None:
    """Accept audio and video by file suffix, else by declared type; 415 otherwise."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in MEDIA_SUFFIXES:
        return
    if content_type in SUFFIXES_BY_TYPE or content_type.startswith(("audio/", "video/")):
        return
    raise UnsupportedMedia("Unsupported uploaded media type for batch staging.", param=FIELD)


def looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file are text (a playlist, HTML, JSON), not media."""
    sample = head[:SNIFF_BYTES]
    if not sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the sample's end
            return False
        text = sample[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


class StoreUploadHandler(FileUploadHandler):
    """Streams the ``file`` part into the active store; other file fields are skipped."""

    def __init__(self, config: Config, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.config = config
        self.limit = config.limits.batch_max_staged_upload_bytes
        self.incoming: _Incoming | None = None
        self.writer: ObjectWriter | None = None
        self.stored: StoredObject | None = None
        self._head = b""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        if self.field_name != FIELD or self.incoming is not None:
            raise SkipFile
        self.incoming = _incoming(self.file_name, self.content_type, self.config)
        self.writer = active_store(self.config.artifacts).writer(
            self.incoming.key, self.incoming.content_type
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.writer is None:
            return raw_data
        if start + len(raw_data) > self.limit:
            raise _too_large(self.limit)
        if len(self._head) < SNIFF_BYTES:
            self._head += raw_data[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES and looks_like_text(self._head):
                raise _not_media()
        self.writer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> None:
        if self.writer is None:
            return
        if self.writer.size == 0:
            raise InvalidInput("The uploaded file is empty.", param=FIELD)
        if looks_like_text(self._head):
            raise _not_media()
        self.stored = self.writer.commit()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        if self.stored is not None and self.incoming is not None:
            # Refused once the file was complete (``stage``'s verify): its object goes too.
            active_store(self.config.artifacts).delete(self.incoming.key)
            self.stored = None


def _not_media() -> UnsupportedMedia:
    return UnsupportedMedia("The uploaded file is not audio or video.", param=FIELD)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Uploaded file exceeded the configured {human_bytes(limit)} batch staging limit.",
        param=FIELD,
    )


def stage(
    request: HttpRequest,
    producer: str,
    config: Config,
    verify: Callable[[HttpRequest], None] | None = None,
) -> StagedUpload:
    """Store the request's ``file`` part and record it for ``producer``. ``verify`` runs once
    the body is parsed and may raise to refuse the request (its file is then deleted)."""
    handler = StoreUploadHandler(config, request)
    request.upload_handlers = [handler]
    try:
        request.POST  # noqa: B018 - parsing the body runs the handler
        if verify is not None:
            verify(request)
        if handler.incoming is None or handler.stored is None:
            raise InvalidInput(
                "Multipart requests must include a file field named 'file'.", param=FIELD
            )
    except BaseException:
        handler.abort()
        raise
    return _record(producer, handler.incoming, handler.stored, config)


async def stage_off_loop(
    request: HttpRequest,
    producer: str,
    config: Config,
    verify: Callable[[HttpRequest], None] | None = None,
) -> StagedUpload:
    """:func:`stage` on a thread of its own: parsing streams the file into the store, blocking
    I/O that must not hold up the event loop."""

    def run() -> StagedUpload:
        try:
            return stage(request, producer, config, verify)
        finally:
            close_old_connections()

    return await sync_to_async(run, thread_sensitive=False)()


def stage_file(
    producer: str, path: Path, filename: str, content_type: str, config: Config
) -> StagedUpload:
    """Stage a local file (the console's long uploads) with the same checks as the API."""
    incoming = _incoming(filename, content_type, config)
    limit = config.limits.batch_max_staged_upload_bytes
    if path.stat().st_size > limit:
        raise _too_large(limit)
    with path.open("rb") as stream:
        if looks_like_text(stream.read(SNIFF_BYTES)):
            raise _not_media()
        stream.seek(0)
        stored = active_store(config.artifacts).put_stream(
            incoming.key, stream, incoming.content_type
        )
    return _record(producer, incoming, stored, config)


def _incoming(file_name: str | None, content_type: str | None, config: Config) -> _Incoming:
    filename = safe_filename(file_name)
    declared = (content_type or OCTET_STREAM).split(";")[0].strip().lower()
    check_media_type(filename, declared)
    upload_id = uuid.uuid4()
    return _Incoming(
        upload_id, filename, declared, staged_key(config.artifacts.prefix, upload_id, filename)
    )


def _record(
    producer: str, incoming: _Incoming, stored: StoredObject, config: Config
) -> StagedUpload:
    """The row of a stored upload; if it cannot be saved, the object goes too."""
    store = active_store(config.artifacts)
    now = timezone.now()
    try:
        return StagedUpload.objects.create(
            id=incoming.upload_id,
            producer=producer,
            filename=incoming.filename,
            content_type=incoming.content_type,
            size_bytes=stored.size,
            sha256=stored.sha256,
            storage_backend=store.backend,
            storage_key=incoming.key,
            storage_identity=store.identity(),
            created_at=now,
            expires_at=now + timedelta(seconds=config.limits.staged_input_retention_seconds),
        )
    except BaseException:
        store.delete(incoming.key)
        raise

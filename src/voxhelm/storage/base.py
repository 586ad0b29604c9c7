"""The artifact store interface: ``ArtifactStore`` and what its operations return and raise.

A store keeps opaque bytes under ``/``-separated relative keys (``voxhelm/jobs/<id>/...``).
Every write is atomic: a reader sees the old object or the complete new one, never a part.
A store describes itself with :meth:`ArtifactStore.identity`, a JSON object without
secrets that is saved with each artifact so it can be read back after settings change.
Framework-free: nothing here imports Django.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Self

CHUNK_BYTES = 1024 * 1024


class StoreError(Exception):
    """The store failed or is misconfigured. The message may name paths: log it, never show it."""


class InvalidKey(StoreError, ValueError):
    """A key that could escape the store (absolute, ``..``, empty segments) or is malformed."""


class ObjectNotFound(StoreError):
    """No object under this key."""


class IntegrityError(StoreError):
    """An object read back differs from what was written (size or SHA-256)."""


@dataclass(frozen=True)
class StoredObject:
    """What a write stored: its size in bytes and the SHA-256 hex digest of its content."""

    size: int
    sha256: str


class ObjectWriter(ABC):
    """An object being written piece by piece: :meth:`write` chunks, then :meth:`commit`
    (the object appears whole) or :meth:`abort` (nothing appears, leftovers removed).

    Used as a context manager, an exception inside the block aborts the write. The size and
    SHA-256 are computed on the way through, so no second read is needed.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self.size += len(chunk)
        self._write(chunk)

    def commit(self) -> StoredObject:
        """Publish the object; returns its size and digest."""
        self._commit()
        self._done = True
        return StoredObject(size=self.size, sha256=self._digest.hexdigest())

    def abort(self) -> None:
        """Drop the write; safe to call twice or after a failed commit."""
        if not self._done:
            self._done = True
            self._abort()

    @abstractmethod
    def _write(self, chunk: bytes) -> None: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _abort(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.abort()


class VerifyingReader(io.RawIOBase):
    """Reads an object and checks its SHA-256 (and size) when the end is reached.

    A mismatch raises :class:`IntegrityError` instead of returning end-of-file, so a
    consumer that reads to the end never mistakes damaged bytes for the stored object.
    """

    def __init__(self, raw: BinaryIO, sha256: str, size: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._expected = sha256.lower()
        self._size = size
        self._digest = hashlib.sha256()
        self._seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        if not data:
            self._verify()
            return 0
        self._digest.update(data)
        self._seen += len(data)
        buffer[: len(data)] = data
        return len(data)

    def _verify(self) -> None:
        if self._size is not None and self._seen != self._size:
            raise IntegrityError(f"Stored object has {self._seen} bytes, expected {self._size}.")
        if not hmac.compare_digest(self._digest.hexdigest(), self._expected):
            raise IntegrityError("Stored object does not match its recorded SHA-256.")

    def close(self) -> None:
        self._raw.close()
        super().close()


class ArtifactStore(ABC):
    """Where artifact bytes live. Subclasses set ``backend`` and implement the operations.

    Every write goes through :meth:`writer`; the filesystem store renames a finished
    temporary file into place, the S3 store sends one PUT or a multipart upload that is
    completed only on commit.
    """

    backend: ClassVar[str]

    @abstractmethod
    def writer(self, key: str, content_type: str) -> ObjectWriter:
        """Start writing ``key``; the object (replacing any old one) appears on commit."""

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        """Store everything ``stream`` yields under ``key``, atomically; replaces any object."""
        with self.writer(key, content_type) as out:
            while chunk := stream.read(CHUNK_BYTES):
                out.write(chunk)
            return out.commit()

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        """Store the file at ``path`` under ``key`` (see :meth:`put_stream`)."""
        with path.open("rb") as stream:
            return self.put_stream(key, stream, content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Store ``data`` under ``key`` (see :meth:`put_stream`)."""
        return self.put_stream(key, io.BytesIO(data), content_type)

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary file object for ``key``; raises :class:`ObjectNotFound`."""

    @abstractmethod
    def stat(self, key: str) -> int:
        """The size in bytes of the object under ``key``; raises :class:`ObjectNotFound`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object under ``key``; a missing object is not an error."""

    @abstractmethod
    def delete_tree(self, prefix: str) -> None:
        """Remove every object whose key starts with ``prefix/`` (and leftovers of writes)."""

    def open_verified(self, key: str, sha256: str, size: int | None = None) -> BinaryIO:
        """Like :meth:`open`, but reading to the end raises :class:`IntegrityError` if the
        bytes differ from the recorded digest (and size)."""
        return io.BufferedReader(VerifyingReader(self.open(key), sha256, size), CHUNK_BYTES)

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """A JSON description of this store without secrets, e.g. ``{"backend", "root"}``."""

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`StoreError` with an operator-facing message if the store is unusable
        (unreachable, wrong credentials, missing bucket, unwritable folder)."""

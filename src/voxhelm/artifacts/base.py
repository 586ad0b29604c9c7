"""The artifact store interface: ``ArtifactStore`` and what its operations return and raise.

A store keeps opaque bytes under ``/``-separated relative keys (``voxhelm/jobs/<id>/...``).
Every write is atomic: a reader sees the old object or the complete new one, never a part.
A store describes itself with :meth:`ArtifactStore.identity`, a JSON object without
secrets that is saved with each artifact so it can be read back after settings change.
Framework-free: nothing here imports Django.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

CHUNK_BYTES = 1024 * 1024


class StoreError(Exception):
    """The store failed or is misconfigured. The message may name paths: log it, never show it."""


class InvalidKey(StoreError, ValueError):
    """A key that could escape the store (absolute, ``..``, empty segments) or is malformed."""


class ObjectNotFound(StoreError):
    """No object under this key."""


@dataclass(frozen=True)
class StoredObject:
    """What a write stored: its size in bytes and the SHA-256 hex digest of its content."""

    size: int
    sha256: str


class ArtifactStore(ABC):
    """Where artifact bytes live. Subclasses set ``backend`` and implement the operations.

    S3-compatible stores slot in beside the filesystem store: ``put_stream`` maps to a
    (multipart) upload whose object appears only when complete, ``open`` to a streaming
    GET, ``delete_tree`` to list-and-delete under a prefix.
    """

    backend: ClassVar[str]

    @abstractmethod
    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        """Store everything ``stream`` yields under ``key``, atomically; replaces any object."""

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

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """A JSON description of this store without secrets, e.g. ``{"backend", "root"}``."""

"""The filesystem artifact store (``VOXHELM_ARTIFACT_ROOT``): atomic writes under one root.

A write goes to a temporary file in the target's own folder, is flushed and fsynced, then
renamed over the target (``os.replace`` is atomic within a filesystem), and the folder is
fsynced so the rename survives a power cut. Keys are checked twice: syntactically
(:func:`~voxhelm.artifacts.keys.validate_key`) and by resolving the path, so a symlink
planted inside the root cannot lead a key outside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from voxhelm.artifacts.base import (
    CHUNK_BYTES,
    ArtifactStore,
    InvalidKey,
    ObjectNotFound,
    StoredObject,
)
from voxhelm.artifacts.keys import validate_key

TEMP_PREFIX = ".voxhelm-tmp-"
"""Name prefix of in-flight writes; no key segment may start with it."""


class FilesystemStore(ArtifactStore):
    backend = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def path_for(self, key: str) -> Path:
        """The path of ``key`` under the root; raises :class:`InvalidKey` if it would leave it."""
        parts = validate_key(key).split("/")
        if any(part.startswith(TEMP_PREFIX) for part in parts):
            raise InvalidKey("Artifact keys must not use the store's temporary-file prefix.")
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey("Artifact key resolves outside the store root.")
        return path

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            Path(temp_name).replace(path)  # atomic within one filesystem
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)
        return StoredObject(size=size, sha256=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path_for(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"No artifact object {key!r}.") from None

    def stat(self, key: str) -> int:
        path = self.path_for(key)
        if not path.is_file():
            raise ObjectNotFound(f"No artifact object {key!r}.")
        return path.stat().st_size

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(key).unlink()

    def delete_tree(self, prefix: str) -> None:
        folder = self.path_for(prefix)
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "root": str(self.root)}


def _fsync_folder(folder: Path) -> None:
    # Not every platform can open a folder for fsync; the rename is then as durable as it gets.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

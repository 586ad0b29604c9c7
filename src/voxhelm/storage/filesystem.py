"""The filesystem artifact store (``VOXHELM_ARTIFACT_ROOT``): atomic writes under one root.

A write goes to a temporary file in the target's own folder, is flushed and fsynced, then
renamed over the target (``os.replace`` is atomic within a filesystem), and the folder is
fsynced so the rename survives a power cut. Keys are checked twice: syntactically
(:func:`~voxhelm.storage.keys.validate_key`) and by resolving the path, so a symlink
planted inside the root cannot lead a key outside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any, BinaryIO

from voxhelm.storage.base import (
    ArtifactStore,
    InvalidKey,
    ObjectNotFound,
    ObjectWriter,
    StoreError,
)
from voxhelm.storage.keys import validate_key

TEMP_PREFIX = ".voxhelm-tmp-"
"""Name prefix of in-flight writes; no key segment may start with it."""


class FilesystemStore(ArtifactStore):
    backend = "filesystem"

    def __init__(self, root: Path, prefix: str = "") -> None:
        self.root = root.expanduser().resolve()
        self.prefix = prefix  # recorded in the identity only; keys carry it already

    def path_for(self, key: str) -> Path:
        """The path of ``key`` under the root; raises :class:`InvalidKey` if it would leave it."""
        parts = validate_key(key).split("/")
        if any(part.startswith(TEMP_PREFIX) for part in parts):
            raise InvalidKey("Artifact keys must not use the store's temporary-file prefix.")
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey("Artifact key resolves outside the store root.")
        return path

    def writer(self, key: str, content_type: str) -> ObjectWriter:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return _FileWriter(path)

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
        return {"backend": self.backend, "root": str(self.root), "prefix": self.prefix}

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f"{TEMP_PREFIX}check-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(
                f"The artifact folder {self.root} is not writable ({exc.strerror})."
            ) from None


class _FileWriter(ObjectWriter):
    """A temporary file beside the target, fsynced and renamed over it on commit."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        self._temp = Path(temp_name)
        self._file: IO[bytes] = os.fdopen(fd, "wb")

    def _write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def _commit(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._temp.replace(self._path)  # atomic within one filesystem
        except BaseException:
            self._abort()
            raise
        _fsync_folder(self._path.parent)

    def _abort(self) -> None:
        self._file.close()
        self._temp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    # Not every platform can open a folder for fsync; the rename is then as durable as it gets.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

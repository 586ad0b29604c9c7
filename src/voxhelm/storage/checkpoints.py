"""Chunk checkpoints of a long transcription, kept in an artifact store between attempts.

A job's finished chunks (see :mod:`voxhelm.stt.chunks`) are saved under
``<prefix>/checkpoints/<job_id>/``, so the next attempt (the worker was killed, a remote
worker lost its lease) finds them in the same shared store, whichever worker runs it. They
are dropped when the job has ended. Framework-free: the server's pipeline and
``voxhelm-remote-worker`` both use it.
"""

from __future__ import annotations

import logging

from voxhelm.storage.base import ArtifactStore, ObjectNotFound, StoreError
from voxhelm.storage.keys import validate_key, validate_name

logger = logging.getLogger("voxhelm.artifacts")

MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # a chunk's transcript is far smaller


class StoreCheckpoints:
    """The checkpoints of one job: the objects under ``folder`` in ``store`` (see
    :func:`voxhelm.storage.keys.checkpoint_prefix`). An empty folder keeps nothing."""

    def __init__(self, store: ArtifactStore, folder: str) -> None:
        self.store = store
        self.folder = validate_key(folder) if folder else ""

    def load_checkpoint(self, name: str) -> bytes | None:
        """The checkpoint ``name``, or None when there is none (or it cannot be read)."""
        if not self.folder:
            return None
        try:
            with self.store.open(self._key(name)) as stream:
                return stream.read(MAX_CHECKPOINT_BYTES)
        except ObjectNotFound:
            return None
        except (StoreError, OSError):
            logger.warning("checkpoint %s could not be read; that chunk runs again", name)
            return None

    def save_checkpoint(self, name: str, data: bytes) -> None:
        """Keep ``data`` as checkpoint ``name`` (a failure only costs the resume)."""
        if not self.folder:
            return
        try:
            self.store.put_bytes(self._key(name), data, "application/json")
        except (StoreError, OSError):
            logger.warning("checkpoint %s could not be saved; a rerun repeats that chunk", name)

    def drop(self) -> None:
        """Delete every checkpoint of the job."""
        if not self.folder:
            return
        try:
            self.store.delete_tree(self.folder)
        except (StoreError, OSError):
            logger.warning("checkpoints of a finished job could not be deleted")

    def _key(self, name: str) -> str:
        return f"{self.folder}/{validate_name(name)}"

"""Which store to use: the active one from settings, or the one an artifact row recorded.

Each artifact row keeps the identity of the store it was written to; reads resolve through
that identity, so artifacts stay readable after ``VOXHELM_ARTIFACT_ROOT`` (or, later, the S3
endpoint or bucket) changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voxhelm.artifacts.base import ArtifactStore, StoreError
from voxhelm.artifacts.filesystem import FilesystemStore
from voxhelm.config import ArtifactsConfig


def active_store(config: ArtifactsConfig) -> ArtifactStore:
    """The store new artifacts are written to (``VOXHELM_ARTIFACT_BACKEND``)."""
    if config.backend == "filesystem":
        return FilesystemStore(config.root)
    raise StoreError(f"The {config.backend!r} artifact backend is not available in this build.")


def store_for_identity(
    identity: Mapping[str, Any] | None, config: ArtifactsConfig
) -> ArtifactStore:
    """The store described by a recorded ``identity``; empty means the active store."""
    if not identity:
        return active_store(config)
    backend = identity.get("backend")
    if backend == "filesystem":
        root = identity.get("root")
        if not isinstance(root, str) or not Path(root).is_absolute():
            raise StoreError("A filesystem store identity needs an absolute 'root'.")
        return FilesystemStore(Path(root))
    raise StoreError(f"No store can serve the recorded identity backend {backend!r}.")

"""Which store to use: the active one from settings, or the one a row recorded.

Each artifact and staged upload keeps the identity of the store it was written to (backend,
where, and the key prefix; never credentials); reads resolve through that identity, so
objects stay readable after ``VOXHELM_ARTIFACT_ROOT``, the S3 endpoint or the bucket
changes. An S3 identity is served with the *current* credentials.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voxhelm.config import ArtifactsConfig
from voxhelm.storage.base import ArtifactStore, StoreError
from voxhelm.storage.filesystem import FilesystemStore
from voxhelm.storage.s3 import S3Store


@functools.cache
def active_store(config: ArtifactsConfig) -> ArtifactStore:
    """The store new objects are written to (``VOXHELM_ARTIFACT_BACKEND``), one per process."""
    if config.backend == "filesystem":
        return FilesystemStore(config.root, prefix=config.prefix)
    if config.backend == "s3":
        return _s3_store(
            config.s3_endpoint_url,
            config.bucket,
            config.s3_region,
            config.s3_force_path_style,
            config.prefix,
            config,
        )
    raise StoreError(f"The {config.backend!r} artifact backend is not available in this build.")


def store_for_identity(
    identity: Mapping[str, Any] | None, config: ArtifactsConfig
) -> ArtifactStore:
    """The store described by a recorded ``identity``; empty or current means the active one."""
    if not identity:
        return active_store(config)
    backend = identity.get("backend")
    if backend == config.backend:
        with contextlib.suppress(StoreError):
            active = active_store(config)
            if same_store(identity, active.identity()):
                return active
    prefix = str(identity.get("prefix") or "")
    if backend == "filesystem":
        root = identity.get("root")
        if not isinstance(root, str) or not Path(root).is_absolute():
            raise StoreError("A filesystem store identity needs an absolute 'root'.")
        return FilesystemStore(Path(root), prefix=prefix)
    if backend == "s3":
        return _s3_store(
            str(identity.get("endpoint_url") or ""),
            str(identity.get("bucket") or ""),
            str(identity.get("region") or ""),
            bool(identity.get("force_path_style", True)),
            prefix,
            config,
        )
    raise StoreError(f"No store can serve the recorded identity backend {backend!r}.")


def same_store(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether a recorded identity names the store described by ``current``."""
    return dict(recorded) == dict(current)


@functools.cache
def _s3_store(  # noqa: PLR0917 - positional so functools.cache can key on them
    endpoint_url: str,
    bucket: str,
    region: str,
    force_path_style: bool,
    prefix: str,
    config: ArtifactsConfig,
) -> S3Store:
    # Cached: a boto3 client is costly to build and safe to share between threads.
    return S3Store(
        endpoint_url=endpoint_url,
        bucket=bucket,
        region=region,
        force_path_style=force_path_style,
        access_key_id=config.s3_access_key_id,
        secret_access_key=config.s3_secret_access_key,
        prefix=prefix,
    )

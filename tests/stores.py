"""Looking inside an artifact store from a test, whichever backend it is."""

from __future__ import annotations

from typing import Any

from voxhelm.config import Config
from voxhelm.storage.filesystem import TEMP_PREFIX
from voxhelm.storage.s3 import S3Store
from voxhelm.storage.stores import active_store


def list_names(config: Config, folder: str) -> list[str]:
    """Names of every object directly in ``folder`` of the active store, in-flight writes
    included (sorted)."""
    store = active_store(config.artifacts)
    if isinstance(store, S3Store):
        client: Any = store.client
        listing = client.list_objects_v2(Bucket=store.bucket, Prefix=f"{folder}/")
        names = [item["Key"][len(folder) + 1 :] for item in listing.get("Contents", [])]
        uploads = client.list_multipart_uploads(Bucket=store.bucket, Prefix=f"{folder}/")
        names += [f"(multipart) {u['Key'][len(folder) + 1 :]}" for u in uploads.get("Uploads", [])]
        return sorted(n for n in names if "/" not in n)
    path = config.artifacts.root / folder
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def leave_interrupted_write(config: Config, folder: str) -> None:
    """What a writer killed mid-write leaves in ``folder``: a temporary file, or an
    unfinished multipart upload."""
    store = active_store(config.artifacts)
    if isinstance(store, S3Store):
        client: Any = store.client
        client.create_multipart_upload(Bucket=store.bucket, Key=f"{folder}/half")
        return
    path = config.artifacts.root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{TEMP_PREFIX}half").write_bytes(b"interrupted")


def list_keys(config: Config, prefix: str) -> list[str]:
    """Every object key under ``prefix/`` in the active store, in-flight writes included."""
    store = active_store(config.artifacts)
    if isinstance(store, S3Store):
        client: Any = store.client
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=f"{prefix}/"
        )
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        uploads = client.list_multipart_uploads(Bucket=store.bucket, Prefix=f"{prefix}/")
        keys += [f"(multipart) {u['Key']}" for u in uploads.get("Uploads", [])]
        return sorted(keys)
    root = config.artifacts.root
    folder = root / prefix
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file())

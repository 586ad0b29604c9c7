"""Pull a model from the Hugging Face Hub into the store: resumable, checksummed, atomic.

huggingface_hub does the talking (``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``, proxies,
retries) but not the keeping: its own downloads write to a temporary name unique to the
process and delete it when they fail, so a killed ``voxhelm models pull`` would start over.
Here each file goes to ``<name>.part`` in a staging folder beside the destination, continued
with an HTTP Range request by the next pull, checked against the Hub's SHA-256 (Git LFS
files), Git blob id (small files) or the Piper catalogue's MD5, and only then renamed; the
finished model is renamed into place last, so a request can never load half a model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Protocol

from voxhelm import metrics
from voxhelm.modelcache.catalogue import (
    FASTERWHISPER_PATTERNS,
    FASTERWHISPER_REQUIRED,
    PIPER_INDEX,
    Kind,
    Known,
)
from voxhelm.modelcache.layout import MANIFEST
from voxhelm.modelstore.inventory import Installed, Store, free_bytes, fsync_dir

logger = logging.getLogger("voxhelm.models")

PART_SUFFIX = ".part"
CHUNK = 1024 * 1024
# Left free beside a pull, so that filling the disk to the last byte does not take the
# database and the logs down with it.
DISK_RESERVE_BYTES = 64 * 1024 * 1024
ENOSPC_ERRNOS = (28, 122)  # ENOSPC, EDQUOT


class PullFailed(Exception):
    """A pull did not install the model; the message says why (safe to show)."""


class HubUnreachable(PullFailed):
    """The Hub cannot be reached (offline mode, network down)."""


class NotAModel(PullFailed):
    """The repository, file or voice does not exist or is not a model of that kind."""


class ChecksumMismatch(PullFailed):
    """A downloaded file is not what the Hub says it is; the file was thrown away."""


class NotEnoughSpace(PullFailed):
    """The disk cannot hold the model."""


class Progress(Protocol):
    """Where a pull reports its bytes (a terminal bar, log lines, the console)."""

    def start(self, name: str, total: int, done: int) -> None: ...

    def advance(self, count: int) -> None: ...

    def finish(self, ok: bool) -> None: ...


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model on the Hub and how to check it."""

    path: str  # in the repository
    local_name: str  # in the installed model
    size: int
    algorithm: str  # sha256 | git-blob | md5
    digest: str


@dataclass(frozen=True)
class Plan:
    known: Known
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)


def pull(
    known: Known,
    store: Store,
    progress: Progress,
    *,
    endpoint: str | None = None,
    token: str | None = None,
) -> Installed:
    """Install ``known`` into ``store`` and return it; an installed model is returned as is.

    Two pulls of one model (the CLI and the console) take turns on a lock file: the second
    finds the model installed. Raises :class:`PullFailed`.
    """
    installed = _installed(known, store)
    if installed is not None:
        return installed
    staging = store.staging_dir(known)
    staging.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _locked(staging.with_name(f"{staging.name}.lock")):
        installed = _installed(known, store)
        if installed is not None:
            return installed
        try:
            plan = plan_pull(known, endpoint=endpoint, token=token)
            _download_all(plan, staging, progress, endpoint=endpoint, token=token)
            _install(plan, staging, store)
        except (PullFailed, OSError) as exc:
            metrics.model_pulls.labels(known.kind.value, "failed").inc()
            progress.finish(False)
            if isinstance(exc, PullFailed):
                raise
            if exc.errno in ENOSPC_ERRNOS:
                raise NotEnoughSpace(f"The disk filled up while pulling {known.name}.") from exc
            raise PullFailed(f"Pulling {known.name} failed: {exc.strerror or exc}") from exc
    progress.finish(True)
    metrics.model_pulls.labels(known.kind.value, "installed").inc()
    logger.info("pulled model %s in %.1f s", known.name, time.monotonic() - started)
    result = _installed(known, store)
    assert result is not None, "a model just installed is found"
    return result


def _installed(known: Known, store: Store) -> Installed | None:
    if known.kind == Kind.FASTERWHISPER:
        pulled = store.find_fasterwhisper(known.name)
        if pulled is not None:
            return pulled
    found = store.find(known.name)
    return found if found is not None and found.kind == known.kind else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- what to download --------------------------------------------------------------------


def plan_pull(known: Known, *, endpoint: str | None = None, token: str | None = None) -> Plan:
    """Ask the Hub which files make up ``known``, their sizes and checksums."""
    with _hub_errors(known):
        if known.kind == Kind.PIPER:
            return _plan_piper(known, endpoint, token)
        from huggingface_hub import HfApi

        info = HfApi(endpoint=endpoint, token=token).model_info(
            known.repo, revision=known.revision, files_metadata=True
        )
    siblings = info.siblings or []
    if known.kind == Kind.GGML:
        wanted = [s for s in siblings if s.rfilename == known.file]
        if not wanted:
            raise NotAModel(f"{known.repo} has no file {known.file}.")
    else:
        wanted = [
            s
            for s in siblings
            if "/" not in s.rfilename
            and any(fnmatch(s.rfilename, pattern) for pattern in FASTERWHISPER_PATTERNS)
        ]
        names = {s.rfilename for s in wanted}
        if not all(required in names for required in FASTERWHISPER_REQUIRED):
            raise NotAModel(
                f"{known.repo} is not a CTranslate2 Whisper model (it lacks "
                f"{', '.join(r for r in FASTERWHISPER_REQUIRED if r not in names)})."
            )
    files = []
    for sibling in wanted:
        if sibling.lfs is not None:
            algorithm, digest, size = "sha256", sibling.lfs.sha256, sibling.lfs.size
        elif sibling.blob_id and sibling.size is not None:
            algorithm, digest, size = "git-blob", sibling.blob_id, sibling.size
        else:
            raise PullFailed(f"The Hub gave no checksum for {sibling.rfilename}.")
        files.append(RemoteFile(sibling.rfilename, sibling.rfilename, size, algorithm, digest))
    return Plan(known, str(info.sha), tuple(files))


def _plan_piper(known: Known, endpoint: str | None, token: str | None) -> Plan:
    from huggingface_hub import get_session, hf_hub_url, hf_raise_for_status
    from huggingface_hub.utils._headers import build_hf_headers

    url = hf_hub_url(known.repo, PIPER_INDEX, revision=known.revision, endpoint=endpoint)
    response = get_session().get(url, headers=build_hf_headers(token=token))
    hf_raise_for_status(response)
    entry = response.json().get(known.name)
    if not isinstance(entry, dict):
        raise NotAModel(f"The Piper voice catalogue has no voice {known.name}.")
    files = []
    for path, meta in (entry.get("files") or {}).items():
        local = path.rsplit("/", 1)[-1]
        if local in (f"{known.name}.onnx", f"{known.name}.onnx.json"):
            files.append(
                RemoteFile(path, local, int(meta["size_bytes"]), "md5", str(meta["md5_digest"]))
            )
    if len(files) != 2:
        raise NotAModel(f"The Piper voice catalogue lists no model files for {known.name}.")
    return Plan(known, response.headers.get("X-Repo-Commit", known.revision), tuple(files))


@contextlib.contextmanager
def _hub_errors(known: Known) -> Iterator[None]:
    """huggingface_hub's exceptions as :class:`PullFailed` with a message a user can act on."""
    import httpx2
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except OfflineModeIsEnabled as exc:
        raise HubUnreachable(
            f"Cannot pull {known.name}: offline mode is on (HF_HUB_OFFLINE)."
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise NotAModel(f"{known.repo} was not found on the Hub (or needs HF_TOKEN).") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no"
        raise PullFailed(f"The Hub answered {status} for {known.name}.") from exc
    except (httpx2.TransportError, ConnectionError) as exc:
        raise HubUnreachable(f"Cannot reach the Hub to pull {known.name}: {exc}") from exc


# -- downloading -------------------------------------------------------------------------


def _part(staging: Path, remote: RemoteFile) -> Path:
    return staging / f"{remote.local_name}{PART_SUFFIX}"


def _staged_bytes(staging: Path, remote: RemoteFile) -> int:
    if (staging / remote.local_name).is_file():
        return remote.size  # downloaded and checked by an earlier, interrupted pull
    try:
        size = _part(staging, remote).stat().st_size
    except FileNotFoundError:
        return 0
    return size if size <= remote.size else 0


def _download_all(
    plan: Plan, staging: Path, progress: Progress, *, endpoint: str | None, token: str | None
) -> None:
    done = sum(_staged_bytes(staging, f) for f in plan.files)
    needed = plan.total - done
    free = free_bytes(staging)
    if needed + DISK_RESERVE_BYTES > free:
        raise NotEnoughSpace(
            f"{plan.known.name} needs {needed / 1e6:.0f} MB more, and only "
            f"{max(free - DISK_RESERVE_BYTES, 0) / 1e6:.0f} MB are free in the model store."
        )
    if done:
        logger.info("resuming pull of %s at %d of %d bytes", plan.known.name, done, plan.total)
    progress.start(plan.known.name, plan.total, done)
    for remote in plan.files:
        _download(plan, remote, staging, progress, endpoint=endpoint, token=token)


def _download(
    plan: Plan,
    remote: RemoteFile,
    staging: Path,
    progress: Progress,
    *,
    endpoint: str | None,
    token: str | None,
) -> None:
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils._headers import build_hf_headers

    final = staging / remote.local_name
    if final.is_file():
        return
    part = _part(staging, remote)
    resume = _staged_bytes(staging, remote)
    if resume == 0:
        part.unlink(missing_ok=True)  # longer than the file: not a prefix of it
    url = hf_hub_url(plan.known.repo, remote.path, revision=plan.commit, endpoint=endpoint)
    with _hub_errors(plan.known), part.open("ab") as handle:
        http_get(
            url,
            handle,
            resume_size=resume,
            headers=build_hf_headers(token=token),
            expected_size=remote.size,
            displayed_filename=remote.local_name,
            tqdm_class=_forwarder(progress, plan.known.kind.value),
        )
        handle.flush()
        os.fsync(handle.fileno())
    if not _matches(part, remote):
        part.unlink()
        raise ChecksumMismatch(
            f"{remote.local_name} of {plan.known.name} does not match the Hub's checksum; "
            "the file was discarded. Pull again."
        )
    part.replace(final)


def _forwarder(progress: Progress, kind: str) -> type:
    """A class huggingface_hub can use as its ``tqdm_class``: counts go to ``progress``."""

    class Forward:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __enter__(self) -> Forward:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def update(self, count: float | None = 1) -> None:
            progress.advance(int(count or 0))
            metrics.model_pull_bytes.labels(kind).inc(max(int(count or 0), 0))

        def close(self) -> None:
            pass

    return Forward


def _matches(path: Path, remote: RemoteFile) -> bool:
    if path.stat().st_size != remote.size:
        return False
    if remote.algorithm == "git-blob":
        digest = hashlib.sha1(f"blob {remote.size}\0".encode(), usedforsecurity=False)
    elif remote.algorithm == "md5":
        digest = hashlib.md5(usedforsecurity=False)
    else:
        digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == remote.digest.lower()


# -- installing --------------------------------------------------------------------------


def _install(plan: Plan, staging: Path, store: Store) -> None:
    known = plan.known
    manifest = {
        "name": known.name,
        "kind": known.kind.value,
        "repo": known.repo,
        "revision": known.revision,
        "commit": plan.commit,
        "files": {f.local_name: {"size": f.size, f.algorithm: f.digest} for f in plan.files},
        "pulled_at": time.time(),
    }
    final = store.final_path(known)
    final.parent.mkdir(parents=True, exist_ok=True)
    if known.kind == Kind.FASTERWHISPER:
        _write_json(staging / MANIFEST, manifest)
        fsync_dir(staging)
        if final.exists():  # a folder without a manifest: a leftover, never a model
            shutil.rmtree(final)
        staging.rename(final)
    elif known.kind == Kind.GGML:
        (staging / known.name).replace(final)
        shutil.rmtree(staging, ignore_errors=True)
    else:
        # The voice is offered once its .onnx is there: the config and manifest go first.
        (staging / f"{known.name}.onnx.json").replace(final.with_name(f"{known.name}.onnx.json"))
        _write_json(final.with_name(f".{known.name}.{MANIFEST}"), manifest)
        (staging / f"{known.name}.onnx").replace(final)
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(final.parent)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    temp.replace(path)

"""Work folders in the temp dir: each one locked by its live owner, swept once the owner died.

Every temporary file Voxhelm writes to the temp dir (``TMPDIR``) lives in a work folder
``voxhelm-<kind>-<random>``: a job attempt's copy of its input, a sync request's upload or
download, whisper.cpp's WAV. The folder holds a lock file on which the process that made it
keeps an exclusive ``flock`` until it removes the folder. The kernel drops the lock when the
process dies, even on SIGKILL, so a folder whose lock can be taken belongs to nobody: each
process sweeps such folders when it starts and before each job attempt, which makes the
retry of a crashed attempt remove what the crash left, even in another process.

Several processes may share one temp dir (``voxhelm web`` beside workers, remote workers on
one host): a live owner's lock is never free, whatever its pid or container (the lock is
the host kernel's). ``flock`` locks belong to an open file, not a process, so a process's
own sweep skips its own live folders too.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("voxhelm.workdirs")

# Kinds a folder may have; the sweep takes only these names, so other ``voxhelm-`` folders
# (a benchmark's logs, a test's var dir) are never touched.
KINDS = ("job", "remote", "sync", "console", "refs", "whispercpp", "upload")
LOCK_NAME = ".owner.lock"
# A folder without a lock file was made by an older Voxhelm (or by a process killed between
# creating the folder and naming its lock): it is taken only once unchanged this long, since
# an older process sharing the temp dir could still be using it.
UNLOCKED_GRACE_SECONDS = 24 * 3600
_NAME = re.compile(rf"voxhelm-(?:{'|'.join(KINDS)})-[A-Za-z0-9_]+")


class Workdir:
    """A fresh work folder of this process, removed by :meth:`remove` (or at the end of a
    ``with`` block, which yields its path)."""

    def __init__(self, kind: str, directory: Path | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown work folder kind {kind!r}")
        self.path = Path(tempfile.mkdtemp(prefix=f"voxhelm-{kind}-", dir=directory))
        try:
            self._fd: int | None = _publish_lock(self.path)
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *_: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Delete the folder, then let its lock go (a no-op the second time)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(fd)


def _publish_lock(folder: Path) -> int:
    """Create the lock file locked, and only then give it the name a sweep looks for."""
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".lock-")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows the file yet
        Path(temp).rename(folder / LOCK_NAME)
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True)
class Swept:
    """What one sweep removed."""

    folders: int
    bytes: int
    seconds: float


def sweep(directory: Path | None = None, *, when: str = "") -> Swept:
    """Remove the work folders of dead processes from ``directory`` (the temp dir); logs
    what it removed, ``when`` saying at which moment. Never raises for a folder it cannot
    read or remove: it is left for the next sweep."""
    started = time.monotonic()
    root = Path(directory or tempfile.gettempdir())
    folders = removed_bytes = 0
    try:
        entries = list(os.scandir(root))
    except OSError as exc:
        logger.warning("cannot list %s for dead work folders: %s", root, exc)
        entries = []
    for entry in entries:
        if not _NAME.fullmatch(entry.name):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid != os.getuid():
            continue  # another user's folder (a shared /tmp) is not ours to judge
        size = _remove_if_dead(Path(entry.path), info.st_mtime)
        if size is not None:
            folders += 1
            removed_bytes += size
    swept = Swept(folders, removed_bytes, round(time.monotonic() - started, 3))
    if folders:
        logger.info(
            "removed %d work folder%s of dead processes (%d bytes) in %.3f s from %s%s",
            folders,
            "" if folders == 1 else "s",
            removed_bytes,
            swept.seconds,
            root,
            f" ({when})" if when else "",
        )
    return swept


def _remove_if_dead(folder: Path, modified: float) -> int | None:
    """Remove ``folder`` if its owner is gone; returns the bytes it held, or None."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if time.time() - modified < UNLOCKED_GRACE_SECONDS:
            return None
        return _remove(folder)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # held: the owner lives (or another sweep is removing it)
        # Held now by this sweep, so a second sweep skips the folder while it goes.
        return _remove(folder)
    finally:
        os.close(fd)


def _remove(folder: Path) -> int | None:
    size = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                size += (Path(parent) / name).lstat().st_size
    if not folder.exists():
        return None  # its owner (or another sweep) removed it meanwhile
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        logger.warning("cannot remove the dead work folder %s; the next sweep tries again", folder)
    return size

"""Disks under attack: the bytes a server process holds in files (open ones too), a small
tmpfs to fill up, and a filler that fills it."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path


def disk_bytes(*roots: Path, pid: int | None = None) -> int:
    """Bytes in files under ``roots``, counting files the process ``pid`` holds open there
    too: a spooled body rolls over into an unlinked temporary file no directory walk sees."""
    sizes: dict[int, int] = {}
    for root in roots:
        for directory, _dirs, files in os.walk(root):
            for name in files:
                try:
                    stat = (Path(directory) / name).stat()
                except FileNotFoundError:
                    continue  # removed while we looked
                sizes[stat.st_ino] = stat.st_size
    if pid is not None:
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir() if fds.exists() else ():
            try:
                link = str(fd.readlink())
                if any(link.startswith(str(root)) for root in roots):
                    stat = fd.stat()
                    sizes[stat.st_ino] = stat.st_size
            except (FileNotFoundError, PermissionError):
                continue
    return sum(sizes.values())


class DiskSampler:
    """The peak bytes in files under ``roots`` (temporary files and the artifact store)."""

    def __init__(self, *roots: Path, pid: int) -> None:
        self.roots = roots
        self.pid = pid
        self.base = disk_bytes(*roots, pid=pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, disk_bytes(*self.roots, pid=self.pid) - self.base)
            time.sleep(0.005)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, disk_bytes(*self.roots, pid=self.pid) - self.base)


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``folder``; yields False where mounting is not allowed."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    try:
        yield mounted.returncode == 0
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> int:
    """Write a filler file until the file system is full; returns its size."""
    written = 0
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            written += os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return written

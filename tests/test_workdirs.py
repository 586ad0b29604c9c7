"""Work folders and their sweep, with real owner processes killed with SIGKILL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voxhelm.workdirs import KINDS, LOCK_NAME, UNLOCKED_GRACE_SECONDS, Workdir, sweep

# Makes COUNT work folders of KIND in DIR, each with SIZE bytes of "media", prints their
# paths and waits for a line on stdin (or to be killed).
OWNER = """
import sys
from pathlib import Path
from voxhelm.workdirs import Workdir
kind, directory, count, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
folders = [Workdir(kind, directory) for _ in range(count)]
for folder in folders:
    (folder.path / "upload.wav").write_bytes(b"\\0" * size)
print(" ".join(str(folder.path) for folder in folders), flush=True)
sys.stdin.readline()
"""

Spawn = Callable[..., tuple[subprocess.Popen[bytes], list[Path]]]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start a real process owning work folders in ``tmp_path``."""
    owners: list[subprocess.Popen[bytes]] = []

    def start(
        kind: str = "job", count: int = 1, size: int = 1000
    ) -> tuple[subprocess.Popen[bytes], list[Path]]:
        owner = subprocess.Popen(
            [sys.executable, "-c", OWNER, kind, str(tmp_path), str(count), str(size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        owners.append(owner)
        assert owner.stdout is not None
        return owner, [Path(p) for p in owner.stdout.readline().decode().split()]

    yield start
    for owner in owners:
        owner.kill()
        owner.wait()


def kill(owner: subprocess.Popen[bytes]) -> None:
    owner.kill()  # SIGKILL: the owner removes nothing, the kernel drops its lock
    owner.wait()


def make_old(path: Path) -> None:
    old = time.time() - UNLOCKED_GRACE_SECONDS - 60
    os.utime(path, (old, old), follow_symlinks=False)


def test_it_makes_a_locked_folder_and_removes_it(tmp_path: Path) -> None:
    with Workdir("job", tmp_path) as path:
        assert path.parent == tmp_path
        assert path.name.startswith("voxhelm-job-")
        assert sorted(p.name for p in path.iterdir()) == [LOCK_NAME]
        (path / "upload.wav").write_bytes(b"media")
    assert not path.exists()


def test_it_uses_the_temp_dir_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    workdir = Workdir("sync")
    assert workdir.path.parent == tmp_path
    workdir.remove()
    workdir.remove()  # a second remove does nothing
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_a_kind_the_sweep_would_not_know(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown work folder kind"):
        Workdir("bench", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", KINDS)
def test_it_sweeps_the_folder_of_a_killed_process(
    kind: str, tmp_path: Path, spawn: Spawn, caplog: pytest.LogCaptureFixture
) -> None:
    owner, [folder] = spawn(kind, size=4096)
    kill(owner)
    assert (folder / "upload.wav").exists()
    with caplog.at_level(logging.INFO, logger="voxhelm.workdirs"):
        swept = sweep(tmp_path, when="at start")
    assert not folder.exists()
    assert (swept.folders, swept.bytes) == (1, 4096)
    assert f"removed 1 work folder of dead processes (4096 bytes) in {swept.seconds:.3f} s" in (
        caplog.text
    )
    assert "(at start)" in caplog.text


def test_it_never_sweeps_a_live_process_folder(tmp_path: Path, spawn: Spawn) -> None:
    owner, [theirs] = spawn()
    with Workdir("job", tmp_path) as ours:
        swept = sweep(tmp_path)
        assert swept.folders == 0
        assert (theirs / "upload.wav").exists()
        assert ours.exists()  # the flock is the open file's: this process's sweep skips it
    assert owner.stdin is not None
    owner.stdin.write(b"done\n")  # the owner exits normally without removing: now dead
    owner.stdin.close()
    owner.wait()
    assert sweep(tmp_path).folders == 1
    assert list(tmp_path.iterdir()) == []


def test_concurrent_sweeps_remove_each_dead_folder_once(tmp_path: Path, spawn: Spawn) -> None:
    owner, folders = spawn(count=40, size=100)
    kill(owner)
    results = []

    def run() -> None:
        results.append(sweep(tmp_path))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.folders for r in results) == 40
    assert sum(r.bytes for r in results) == 4000
    assert not any(folder.exists() for folder in folders)


def test_a_folder_being_made_is_never_swept(tmp_path: Path) -> None:
    """Sweeps run without pause while threads make, fill and remove folders: none of them
    loses a file it wrote."""
    stop = threading.Event()
    lost: list[str] = []
    made = [0]

    def make() -> None:
        while not stop.is_set():
            with Workdir("job", tmp_path) as path:
                (path / "upload.wav").write_bytes(b"media")
                if (path / "upload.wav").read_bytes() != b"media":
                    lost.append(path.name)
                made[0] += 1

    def sweep_all_the_time() -> None:
        while not stop.is_set():
            if sweep(tmp_path).folders:
                lost.append("a live folder was swept")

    threads = [threading.Thread(target=make) for _ in range(3)]
    threads += [threading.Thread(target=sweep_all_the_time) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert made[0] > 50
    assert lost == []
    assert list(tmp_path.iterdir()) == []


def test_it_takes_a_folder_without_a_lock_only_when_old(tmp_path: Path) -> None:
    """Folders of an older Voxhelm have no lock: one may belong to a live older process."""
    legacy = Path(tempfile.mkdtemp(prefix="voxhelm-job-", dir=tmp_path))
    (legacy / "upload.wav").write_bytes(b"media")
    assert sweep(tmp_path).folders == 0
    assert legacy.exists()
    make_old(legacy)
    swept = sweep(tmp_path)
    assert (swept.folders, swept.bytes) == (1, 5)
    assert not legacy.exists()


def test_it_leaves_everything_else_alone(tmp_path: Path, spawn: Spawn) -> None:
    owner, [dead] = spawn()
    kill(owner)
    outside = tmp_path / "outside"
    outside.mkdir()
    dead.rename(outside / dead.name)  # a dead folder, reachable only through a link
    others = [
        Path(tempfile.mkdtemp(prefix="voxhelm-bench-", dir=tmp_path)),  # a benchmark's logs
        Path(tempfile.mkdtemp(prefix="voxhelm-test-var-", dir=tmp_path)),
        Path(tempfile.mkdtemp(prefix="other-job-", dir=tmp_path)),
    ]
    link = tmp_path / "voxhelm-job-link1234"
    link.symlink_to(outside / dead.name)
    plain = tmp_path / "voxhelm-job-file1234"
    plain.write_bytes(b"not a folder")
    for path in [*others, link, plain]:
        make_old(path)
    assert sweep(tmp_path).folders == 0
    assert all(path.exists() for path in others)
    assert link.is_symlink() and (outside / dead.name / "upload.wav").exists()
    assert plain.read_bytes() == b"not a folder"


def test_it_reports_nothing_for_a_missing_temp_dir(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    swept = sweep(tmp_path / "missing")
    assert (swept.folders, swept.bytes) == (0, 0)
    assert "cannot list" in caplog.text

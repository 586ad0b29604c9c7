"""The filesystem store: atomic writes, keys confined to the root, recorded identities."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from tests.conftest import make_config
from voxhelm.config import ArtifactsConfig
from voxhelm.storage.base import InvalidKey, ObjectNotFound, StoreError
from voxhelm.storage.filesystem import TEMP_PREFIX, FilesystemStore
from voxhelm.storage.stores import active_store, store_for_identity


def every_file(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


class FailingStream(io.RawIOBase):
    """Yields some bytes, then fails the way a dropped download or full disk would."""

    def __init__(self, good: bytes) -> None:
        self.good = good
        self.sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self.sent:
            self.sent = True
            return self.good
        raise OSError("connection reset")


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "artifacts")


def test_it_writes_and_reads_back_with_size_and_sha256(store: FilesystemStore) -> None:
    stored = store.put_bytes("voxhelm/jobs/a/transcript.txt", b"hello", "text/plain")
    assert stored.size == 5
    assert stored.sha256 == hashlib.sha256(b"hello").hexdigest()
    with store.open("voxhelm/jobs/a/transcript.txt") as stream:
        assert stream.read() == b"hello"
    assert store.stat("voxhelm/jobs/a/transcript.txt") == 5


def test_it_stores_a_file_from_a_path(store: FilesystemStore, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # several chunks
    stored = store.put_file("k/source.bin", source, "application/octet-stream")
    assert stored.size == source.stat().st_size
    assert stored.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert (store.root / "k" / "source.bin").read_bytes() == source.read_bytes()


def test_a_failed_write_leaves_no_partial_file(store: FilesystemStore) -> None:
    with pytest.raises(OSError, match="connection reset"):
        store.put_stream("jobs/x/source.mp3", FailingStream(b"partial"), "audio/mpeg")
    assert every_file(store.root) == []


def test_a_failed_overwrite_keeps_the_old_object(store: FilesystemStore) -> None:
    store.put_bytes("jobs/x/transcript.txt", b"complete old text", "text/plain")
    with pytest.raises(OSError):
        store.put_stream("jobs/x/transcript.txt", FailingStream(b"new"), "text/plain")
    with store.open("jobs/x/transcript.txt") as stream:
        assert stream.read() == b"complete old text"
    assert every_file(store.root) == ["jobs/x/transcript.txt"]


def test_a_write_fsyncs_before_it_becomes_visible(
    store: FilesystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failing fsync (e.g. EIO) stands for a crash before the data reached the disk.
    def broken_fsync(fd: int) -> None:
        raise OSError("EIO")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="EIO"):
        store.put_bytes("jobs/x/transcript.txt", b"text", "text/plain")
    assert every_file(store.root) == []


@pytest.mark.parametrize(
    "key", ["../outside", "/etc/passwd", "jobs/../../outside", "", f"jobs/{TEMP_PREFIX}x"]
)
def test_it_refuses_keys_that_could_escape_the_root(store: FilesystemStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        store.put_bytes(key, b"x", "text/plain")
    with pytest.raises(InvalidKey):
        store.open(key)
    assert not (store.root.parent / "outside").exists()


def test_it_refuses_a_symlink_that_leads_out_of_the_root(
    store: FilesystemStore, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKey):
        store.put_bytes("link/file.txt", b"x", "text/plain")
    assert list(outside.iterdir()) == []


def test_missing_objects_are_reported_and_deleting_them_is_fine(store: FilesystemStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.open("jobs/x/nothing.txt")
    with pytest.raises(ObjectNotFound):
        store.stat("jobs/x/nothing.txt")
    store.delete("jobs/x/nothing.txt")


def test_delete_tree_removes_a_jobs_objects_and_leftover_temporary_files(
    store: FilesystemStore,
) -> None:
    store.put_bytes("p/jobs/a/transcript.txt", b"a", "text/plain")
    store.put_bytes("p/jobs/b/transcript.txt", b"b", "text/plain")
    (store.root / "p/jobs/a" / f"{TEMP_PREFIX}abc").write_bytes(b"interrupted")
    store.delete_tree("p/jobs/a")
    assert every_file(store.root) == ["p/jobs/b/transcript.txt"]
    store.delete_tree("p/jobs/missing")


def test_its_identity_names_the_resolved_root(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    store = FilesystemStore(tmp_path / "alias" / ".." / "real")
    assert store.identity() == {
        "backend": "filesystem",
        "root": str((tmp_path / "real").resolve()),
        "prefix": "",
    }


def config_with_root(tmp_path: Path, root: Path) -> ArtifactsConfig:
    return make_config(tmp_path, VOXHELM_ARTIFACT_ROOT=str(root)).artifacts


def test_a_recorded_identity_still_reads_after_the_root_setting_changes(tmp_path: Path) -> None:
    before = config_with_root(tmp_path, tmp_path / "old-root")
    store = active_store(before)
    store.put_bytes("voxhelm/jobs/j/transcript.txt", b"kept", "text/plain")
    identity = store.identity()

    after = config_with_root(tmp_path, tmp_path / "new-root")
    with store_for_identity(identity, after).open("voxhelm/jobs/j/transcript.txt") as stream:
        assert stream.read() == b"kept"
    with pytest.raises(ObjectNotFound):
        store_for_identity({}, after).open("voxhelm/jobs/j/transcript.txt")


@pytest.mark.parametrize(
    "identity",
    [{"backend": "filesystem"}, {"backend": "filesystem", "root": "relative"}, {"backend": "ftp"}],
)
def test_it_refuses_identities_it_cannot_serve(tmp_path: Path, identity: dict[str, str]) -> None:
    # A StoreError is internal (its message may name paths): it never reaches a client.
    with pytest.raises(StoreError):
        store_for_identity(identity, config_with_root(tmp_path, tmp_path / "root"))

"""Every artifact store keeps the same contract; each test runs on the filesystem store and on
a real S3-compatible server (SeaweedFS on loopback)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.s3server import S3Server
from voxhelm.config import Config
from voxhelm.storage.base import ArtifactStore, IntegrityError, ObjectNotFound, StoreError
from voxhelm.storage.s3 import PART_BYTES, S3Store
from voxhelm.storage.stores import active_store, store_for_identity


@pytest.fixture(params=["filesystem", "s3"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    if request.param == "filesystem":
        return make_config(tmp_path, VOXHELM_ARTIFACT_ROOT=str(tmp_path / "artifacts"))
    s3: S3Server = request.getfixturevalue("s3_server")
    return make_config(tmp_path, **s3.env(s3.new_bucket()))


@pytest.fixture
def store(store_config: Config) -> ArtifactStore:
    return active_store(store_config.artifacts)


def test_it_round_trips_bytes_with_size_and_digest(store: ArtifactStore) -> None:
    stored = store.put_bytes("voxhelm/jobs/a/transcript.txt", b"hello", "text/plain")
    assert (stored.size, stored.sha256) == (5, hashlib.sha256(b"hello").hexdigest())
    assert store.stat("voxhelm/jobs/a/transcript.txt") == 5
    with store.open("voxhelm/jobs/a/transcript.txt") as stream:
        assert stream.read() == b"hello"


def test_a_large_object_streams_in_parts_and_reads_back_verified(store: ArtifactStore) -> None:
    data = os.urandom(2 * PART_BYTES + 12345)  # three multipart parts on S3
    stored = store.put_stream("voxhelm/big.bin", io.BytesIO(data), "audio/wav")
    assert stored.size == len(data)
    with store.open_verified("voxhelm/big.bin", stored.sha256, stored.size) as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == stored.sha256


def test_an_aborted_write_leaves_no_object(store: ArtifactStore) -> None:
    with pytest.raises(RuntimeError), store.writer("voxhelm/partial.bin", "audio/wav") as out:
        out.write(os.urandom(PART_BYTES + 1))  # a multipart upload has started on S3
        raise RuntimeError("client went away")
    with pytest.raises(ObjectNotFound):
        store.stat("voxhelm/partial.bin")


def test_a_replaced_object_is_whole_old_or_whole_new(store: ArtifactStore) -> None:
    store.put_bytes("voxhelm/x", b"old", "text/plain")
    store.put_bytes("voxhelm/x", b"newer", "text/plain")
    with store.open("voxhelm/x") as stream:
        assert stream.read() == b"newer"


def test_a_damaged_object_fails_verification(store: ArtifactStore) -> None:
    stored = store.put_bytes("voxhelm/y", b"original bytes", "text/plain")
    store.put_bytes("voxhelm/y", b"tampered bytes", "text/plain")  # same size, other content
    with (
        pytest.raises(IntegrityError),
        store.open_verified("voxhelm/y", stored.sha256, stored.size) as stream,
    ):
        stream.read()


def test_missing_objects_and_deletes(store: ArtifactStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.open("voxhelm/nothing")
    with pytest.raises(ObjectNotFound):
        store.stat("voxhelm/nothing")
    store.delete("voxhelm/nothing")  # missing is fine
    for name in ("a", "b", "sub/c"):
        store.put_bytes(f"voxhelm/jobs/j1/{name}", b"1", "text/plain")
    store.put_bytes("voxhelm/jobs/j10/keep", b"1", "text/plain")
    store.delete_tree("voxhelm/jobs/j1")
    for name in ("a", "b", "sub/c"):
        with pytest.raises(ObjectNotFound):
            store.stat(f"voxhelm/jobs/j1/{name}")
    assert store.stat("voxhelm/jobs/j10/keep") == 1  # a sibling with a longer name survives


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a//b", "a/./b", "a\\b", "a\x00b"])
def test_it_refuses_keys_that_could_escape(store: ArtifactStore, key: str) -> None:
    with pytest.raises(StoreError):
        store.put_bytes(key, b"x", "text/plain")


def test_it_checks_cleanly(store: ArtifactStore) -> None:
    store.check()


def test_objects_stay_readable_after_the_store_settings_change(
    store_config: Config, tmp_path: Path
) -> None:
    store = active_store(store_config.artifacts)
    store.put_bytes("voxhelm/jobs/k/transcript.txt", b"kept", "text/plain")
    identity = store.identity()
    moved = make_config(
        tmp_path, VOXHELM_ARTIFACT_ROOT=str(tmp_path / "elsewhere"), VOXHELM_ARTIFACT_PREFIX="new"
    )
    if store_config.artifacts.backend == "s3":
        moved = make_config(
            tmp_path,
            VOXHELM_ARTIFACT_BACKEND="s3",
            VOXHELM_ARTIFACT_BUCKET="another-bucket",
            VOXHELM_ARTIFACT_S3_ENDPOINT_URL=store_config.artifacts.s3_endpoint_url,
            VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID=store_config.artifacts.s3_access_key_id,
            VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY=store_config.artifacts.s3_secret_access_key,
        )
    assert active_store(moved.artifacts).identity() != identity
    with store_for_identity(identity, moved.artifacts).open("voxhelm/jobs/k/transcript.txt") as s:
        assert s.read() == b"kept"


def test_s3_identity_names_the_place_but_no_secret(s3_server: S3Server, tmp_path: Path) -> None:
    config = make_config(tmp_path, **s3_server.env("voxhelm-b", prefix="studio"))
    identity = active_store(config.artifacts).identity()
    assert identity == {
        "backend": "s3",
        "endpoint_url": s3_server.endpoint_url,
        "region": "us-east-1",
        "bucket": "voxhelm-b",
        "force_path_style": True,
        "prefix": "studio",
    }
    assert config.artifacts.s3_secret_access_key not in repr(active_store(config.artifacts))


def test_wrong_s3_credentials_fail_the_check_clearly(s3_server: S3Server) -> None:
    store = S3Store(
        endpoint_url=s3_server.endpoint_url,
        bucket=s3_server.new_bucket(),
        region="us-east-1",
        force_path_style=True,
        access_key_id="voxhelm-test-key",
        secret_access_key="not-the-secret",
    )
    with pytest.raises(StoreError, match="refused the credentials") as raised:
        store.check()
    assert "not-the-secret" not in str(raised.value)


def test_a_missing_bucket_fails_the_check_clearly(s3_server: S3Server, tmp_path: Path) -> None:
    config = make_config(tmp_path, **s3_server.env("no-such-bucket-here"))
    with pytest.raises(StoreError, match="does not exist"):
        active_store(config.artifacts).check()


def test_an_unreachable_endpoint_fails_the_check_clearly(tmp_path: Path) -> None:
    from tests.conftest import free_port

    config = make_config(
        tmp_path,
        VOXHELM_ARTIFACT_BACKEND="s3",
        VOXHELM_ARTIFACT_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID="k",
        VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY="s",
    )
    with pytest.raises(StoreError, match="unreachable"):
        active_store(config.artifacts).check()

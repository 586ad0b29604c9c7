"""S3 writes against a real S3-compatible server (SeaweedFS on loopback), of a whole stream
(``put_stream``) and pushed into a writer (``writer``): a failed write leaves no multipart upload
behind, a refused one stops at its first part, and a large unseekable stream goes up in parts
without being held whole."""

from __future__ import annotations

import hashlib
import io
import time
import tracemalloc
from typing import Any

import pytest

from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server
from voxhelm.storage.base import ObjectNotFound, StoredObject, StoreError
from voxhelm.storage.s3 import PART_BYTES, S3Store

KEY = "voxhelm/jobs/j/source.wav"


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def store(s3_server: S3Server, bucket: str) -> S3Store:
    return s3_store(s3_server, bucket, SECRET_KEY)


def s3_store(s3_server: S3Server, bucket: str, secret: str) -> S3Store:
    return S3Store(
        endpoint_url=s3_server.endpoint_url,
        bucket=bucket,
        region="us-east-1",
        force_path_style=True,
        access_key_id=ACCESS_KEY,
        secret_access_key=secret,
    )


def multipart_uploads(s3_server: S3Server, bucket: str) -> list[str]:
    """The keys of the bucket's unfinished multipart uploads, as the server lists them."""
    client: Any = s3_server.client()
    return [
        upload["Key"] for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    ]


def wait_for_multipart_upload(s3_server: S3Server, bucket: str) -> None:
    """Return once the server lists a started multipart upload of :data:`KEY`."""
    deadline = time.monotonic() + 30
    while multipart_uploads(s3_server, bucket) != [KEY]:
        assert time.monotonic() < deadline, "no multipart upload was started"
        time.sleep(0.05)


class Generated(io.RawIOBase):
    """``size`` bytes made on the fly, unseekable, hashed as they are handed out; ``fail`` is
    called instead of reading past ``fail_at``."""

    def __init__(self, size: int, fail_at: int | None = None, fail: Any = None) -> None:
        super().__init__()
        self.left = size
        self.given = 0
        self.digest = hashlib.sha256()
        self._block = hashlib.sha256(b"voxhelm").digest() * (64 * 1024 // 32)
        self._fail_at, self._fail = fail_at, fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._fail_at is not None and self.given >= self._fail_at:
            self._fail()
        count = min(len(buffer), len(self._block), self.left)
        data = self._block[:count]
        buffer[:count] = data
        self.digest.update(data)
        self.left -= count
        self.given += count
        return count


def test_an_aborted_writer_leaves_no_multipart_upload(
    store: S3Store, s3_server: S3Server, bucket: str
) -> None:
    out = store.writer(KEY, "audio/wav")
    out.write(b"\x01" * (PART_BYTES + 1))
    wait_for_multipart_upload(s3_server, bucket)
    out.abort()
    assert multipart_uploads(s3_server, bucket) == []
    with pytest.raises(ObjectNotFound):
        store.stat(KEY)


def test_a_stream_failing_midway_leaves_no_multipart_upload(
    store: S3Store, s3_server: S3Server, bucket: str
) -> None:
    def fail() -> None:
        wait_for_multipart_upload(s3_server, bucket)  # the upload is under way, then the
        raise OSError("the source went away")  # source fails

    stream = Generated(4 * PART_BYTES, fail_at=2 * PART_BYTES, fail=fail)
    with pytest.raises(OSError, match="went away"):
        store.put_stream(KEY, stream, "audio/wav")
    assert multipart_uploads(s3_server, bucket) == []
    with pytest.raises(ObjectNotFound):
        store.stat(KEY)


def push(store: S3Store, stream: io.RawIOBase) -> StoredObject:
    """Write ``stream`` as Django's upload handler does: 64 KiB chunks into a writer."""
    with store.writer(KEY, "audio/wav") as out:
        while chunk := stream.read(64 * 1024):
            out.write(chunk)
        return out.commit()


@pytest.mark.parametrize("how", ["put_stream", "writer"])
def test_a_large_unseekable_stream_goes_up_in_parts_without_being_held_whole(
    store: S3Store, s3_server: S3Server, bucket: str, how: str
) -> None:
    size = 12 * PART_BYTES + 12345
    stream = Generated(size)
    tracemalloc.start()
    try:
        if how == "put_stream":
            stored = store.put_stream(KEY, stream, "audio/wav")
        else:
            stored = push(store, stream)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored == StoredObject(size=size, sha256=stream.digest.hexdigest())
    assert peak < 6 * PART_BYTES, f"{peak / PART_BYTES:.1f} parts held at once"
    client: Any = s3_server.client()
    head = client.head_object(Bucket=bucket, Key=KEY, PartNumber=1)
    assert (head["PartsCount"], head["ContentType"]) == (13, "audio/wav")
    with store.open_verified(KEY, stored.sha256, stored.size) as back:
        while back.read(PART_BYTES):
            pass  # reading to the end verifies size and digest


@pytest.mark.parametrize("size", [5, PART_BYTES + 1], ids=["put", "multipart"])
def test_a_write_with_wrong_credentials_fails_as_a_store_error(
    s3_server: S3Server, bucket: str, size: int
) -> None:
    store = s3_store(s3_server, bucket, "not-the-secret")
    with pytest.raises(StoreError, match="refused the credentials") as raised:
        store.put_bytes(KEY, b"\x01" * size, "audio/wav")
    assert "not-the-secret" not in str(raised.value)


@pytest.mark.parametrize("how", ["put_stream", "writer"])
def test_a_write_the_store_refuses_fails_at_once(
    s3_server: S3Server, bucket: str, how: str
) -> None:
    """The upload stops at the first part S3 refuses, not after the whole body (boto3's
    managed transfer reads on: the reason the store sends its own parts)."""
    store = s3_store(s3_server, bucket, "not-the-secret")
    stream = Generated(10 * PART_BYTES)
    with pytest.raises(StoreError, match="refused the credentials"):
        if how == "put_stream":
            store.put_stream(KEY, stream, "audio/wav")
        else:
            push(store, stream)
    assert stream.given <= PART_BYTES + 64 * 1024

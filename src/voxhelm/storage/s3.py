"""The S3 artifact store (``VOXHELM_ARTIFACT_BACKEND=s3``): any S3-compatible object store.

Small objects are one PUT; an object larger than :data:`PART_BYTES` becomes a multipart
upload that is completed only on commit (and aborted otherwise), so a reader never sees a
partial object and memory stays bounded by one part. boto3 is imported lazily: a
filesystem-only deployment never loads it. Error messages never contain credentials.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

from voxhelm.storage.base import (
    ArtifactStore,
    ObjectNotFound,
    ObjectWriter,
    StoreError,
)
from voxhelm.storage.keys import validate_key

S3Client = Any  # boto3 ships no type information

PART_BYTES = 8 * 1024 * 1024
"""Multipart part size: S3 needs >= 5 MiB for every part but the last."""

DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 120


class S3Store(ArtifactStore):
    backend = "s3"

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str,
        force_path_style: bool,
        access_key_id: str,
        secret_access_key: str,
        prefix: str = "",
    ) -> None:
        if not bucket:
            raise StoreError("The S3 artifact store needs VOXHELM_ARTIFACT_BUCKET.")
        if not access_key_id or not secret_access_key:
            raise StoreError(
                "The S3 artifact store needs VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID and "
                "VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY."
            )
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self.force_path_style = force_path_style
        self.prefix = prefix
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._client: S3Client | None = None

    def __repr__(self) -> str:  # never show the credentials
        return f"S3Store(endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r})"

    @property
    def client(self) -> S3Client:
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url or None,
                region_name=self.region or None,
                aws_access_key_id=self._access_key_id,
                aws_secret_access_key=self._secret_access_key,
                config=BotoConfig(
                    s3={"addressing_style": "path" if self.force_path_style else "auto"},
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
        return self._client

    def writer(self, key: str, content_type: str) -> ObjectWriter:
        return _S3Writer(self, validate_key(key), content_type)

    def open(self, key: str) -> BinaryIO:
        with _translated(key):
            response = self.client.get_object(Bucket=self.bucket, Key=validate_key(key))
        return io.BufferedReader(_BodyReader(response["Body"]), PART_BYTES // 8)

    def stat(self, key: str) -> int:
        with _translated(key):
            response = self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        with _translated(key):
            self.client.delete_object(Bucket=self.bucket, Key=validate_key(key))

    def delete_tree(self, prefix: str) -> None:
        folder = validate_key(prefix) + "/"
        with _translated(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder
            )
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
            for start in range(0, len(keys), DELETE_BATCH):
                batch = keys[start : start + DELETE_BATCH]
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
        self._abort_multipart_uploads(folder)

    def _abort_multipart_uploads(self, folder: str) -> None:
        """Drop unfinished multipart uploads under ``folder`` (a killed writer's parts)."""
        # Not every S3-compatible server lists uploads; leftovers then expire by bucket policy.
        with contextlib.suppress(Exception):
            listing = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=folder)
            for upload in listing.get("Uploads", []):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "bucket": self.bucket,
            "force_path_style": self.force_path_style,
            "prefix": self.prefix,
        }

    def check(self) -> None:
        with _translated(""):
            self.client.head_bucket(Bucket=self.bucket)


class _S3Writer(ObjectWriter):
    """Sends each part as it fills, on the caller's thread; every write (a pushed upload, a
    stream) goes through it. Not boto3's managed transfer: that pulls on threads of its own
    and goes on reading after S3 refused the upload, so a refused write would be read whole
    before it fails (tests/artifacts/test_s3_transfer.py), and a 300 MiB upload grew the server
    by 27-35 MiB instead of 22-24 (``bench/upload_memory.py --s3``)."""

    def __init__(self, store: S3Store, key: str, content_type: str) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def _write(self, chunk: bytes) -> None:
        self._buffer += chunk
        while len(self._buffer) >= PART_BYTES:
            part = bytes(self._buffer[:PART_BYTES])
            del self._buffer[:PART_BYTES]
            self._send_part(part)

    def _send_part(self, part: bytes) -> None:
        client, bucket = self._store.client, self._store.bucket
        with _translated(self._key):
            if self._upload_id is None:
                created = client.create_multipart_upload(
                    Bucket=bucket, Key=self._key, ContentType=self._content_type
                )
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            sent = client.upload_part(
                Bucket=bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
            )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def _commit(self) -> None:
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is None:
                with _translated(self._key):
                    client.put_object(
                        Bucket=bucket,
                        Key=self._key,
                        Body=bytes(self._buffer),
                        ContentType=self._content_type,
                        Metadata={"sha256": self._digest.hexdigest()},
                    )
                return
            if self._buffer:
                self._send_part(bytes(self._buffer))
            with _translated(self._key):
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            self._abort()
            raise
        finally:
            self._buffer = bytearray()

    def _abort(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._key, UploadId=self._upload_id
                )
            self._upload_id = None


class _BodyReader(io.RawIOBase):
    """botocore's streaming body as a raw file object."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


@contextlib.contextmanager
def _translated(key: str) -> Iterator[None]:
    """Turn botocore's errors into store errors with messages fit for an operator."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "404", "NotFound") and key:
            raise ObjectNotFound(f"No artifact object {key!r}.") from None
        if code == "NoSuchBucket" or (status == 404 and not key):
            raise StoreError("The S3 bucket does not exist.") from None
        if status == 403 or code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            raise StoreError(
                f"The S3 store refused the credentials ({code or status}): check "
                "VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID and VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY."
            ) from None
        raise StoreError(f"The S3 store failed ({code or status}).") from None
    except BotoCoreError as exc:
        raise StoreError(f"The S3 store is unreachable ({type(exc).__name__}).") from None

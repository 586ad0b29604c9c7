"""Concurrent claims over real HTTP against two ``voxhelm web`` processes sharing one
database (SQLite in WAL mode, or PostgreSQL): every job is leased exactly once, and no
request fails with "database is locked".

The jobs are never run (claims do not look at the media), so no inference is needed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.pgserver import PgServer
from tests.s3server import S3Server
from tests.workers.cluster import cluster_env, start_web, worker_token

pytestmark = pytest.mark.slow

JOBS = 500
CAPABILITIES = {
    "job_types": ["transcribe"],
    "backends": ["fasterwhisper"],
    "models": ["tiny.en"],
    "output_formats": ["text", "json"],
}


@dataclass
class ClaimRun:
    """What every claimer got: job ids, and any status other than 200/204."""

    claimed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def claimer_ids(count: int) -> tuple[str, ...]:
    return tuple(f"w{index:02d}" for index in range(count))


def start_pair(root: Path, env: dict[str, str]) -> list[ServerProcess]:
    """Two web processes on one database (the first migrates it before the second starts)."""
    first = start_web(root / "web-a", env)
    try:
        return [first, start_web(root / "web-b", env)]
    except BaseException:
        first.stop()
        raise


def submit_jobs(server: ServerProcess, count: int) -> list[str]:
    def one(index: int) -> str:
        with server.client() as client:
            response = client.post(
                "/v1/jobs",
                json={
                    "job_type": "transcribe",
                    "input": {"kind": "url", "url": f"http://127.0.0.1:9/{index}.wav"},
                    "task_ref": f"load-{index}",
                },
            )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def run_claimers(servers: list[ServerProcess], ids: tuple[str, ...]) -> ClaimRun:
    """Each claimer claims until there is no work left, alternating between the servers."""
    import time

    run = ClaimRun()
    barrier = threading.Barrier(len(ids))

    def claimer(index: int, worker_id: str) -> None:
        headers = {"Authorization": f"Bearer {worker_token(worker_id)}"}
        clients = [httpx.Client(base_url=s.url, headers=headers, timeout=60) for s in servers]
        try:
            # Unlimited capacity: each claimer keeps claiming without finishing jobs.
            clients[0].post(
                "/v1/internal/workers/heartbeat",
                json={"concurrency": JOBS, "capabilities": CAPABILITIES},
            ).raise_for_status()
            barrier.wait()
            turn = index
            while True:
                turn += 1
                started = time.perf_counter()
                response = clients[turn % len(clients)].post(
                    "/v1/internal/work/claim",
                    json={"worker_id": worker_id, "max_jobs": JOBS, "capabilities": CAPABILITIES},
                )
                elapsed = time.perf_counter() - started
                with run.lock:
                    run.latencies.append(elapsed)
                    if response.status_code == 204:
                        return
                    if response.status_code != 200:
                        run.errors.append(f"{response.status_code} {response.text[:200]}")
                        return
                    run.claimed.append(response.json()["job"]["id"])
        finally:
            for client in clients:
                client.close()

    threads = [threading.Thread(target=claimer, args=(i, w)) for i, w in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"VOXHELM_DATABASE_PATH": str(tmp_path / "shared.sqlite3")}
    postgres: PgServer = request.getfixturevalue("postgres_server")
    return {"DATABASE_URL": postgres.create_database()}


@pytest.fixture
def servers(
    tmp_path: Path,
    s3_server: S3Server,
    database_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[list[ServerProcess]]:
    env = {
        # A long lease: an expired lease makes a job claimable again, by design.
        **cluster_env(s3_server, s3_server.new_bucket(), lease_seconds=3600, ids=claimer_ids(16)),
        **database_env,
    }
    pair = start_pair(tmp_path, env)
    yield pair
    for server in pair:
        server.stop()


@pytest.mark.parametrize("claimers", [8, 16])
def test_concurrent_claimers_lease_every_job_exactly_once(
    servers: list[ServerProcess], claimers: int
) -> None:
    jobs = submit_jobs(servers[0], JOBS)
    run = run_claimers(servers, claimer_ids(claimers))
    assert run.errors == []
    doubles = [job for job, count in Counter(run.claimed).items() if count > 1]
    assert doubles == []
    assert sorted(run.claimed) == sorted(jobs)
    logs = "".join(server.log() for server in servers)
    assert "database is locked" not in logs
    assert "Traceback" not in logs

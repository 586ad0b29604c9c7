"""Remote pull workers: claim latency under concurrent claimers, and job throughput with
one vs two ``voxhelm-remote-worker`` processes.

Everything is real and on loopback: ``voxhelm web`` in remote_pull mode (SQLite, or
PostgreSQL with ``--database postgresql``), a SeaweedFS S3 server, worker processes.

* claims: ``--jobs`` tiny jobs (never run), ``--claimers`` threads claiming over HTTP
  until no work is left, against two web processes sharing the database; p50/p99 of one
  claim request, claims per second.
* throughput: the same ``--batch`` short real-speech URL jobs (Piper speech, bundled
  tiny.en model) with 1 and then 2 workers, each on a fresh server; jobs per minute from
  submission to the last success. Worker start-up is not counted (workers have loaded
  the model and are polling before the batch is submitted).

    uv run python bench/remote_workers.py [--claimers 16] [--jobs 500] [--batch 12]
        [--skip-claims] [--skip-throughput] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import wait_until_logged  # noqa: E402
from tests.media import speech_in  # noqa: E402
from tests.pgserver import PgServer, start_postgres  # noqa: E402
from tests.s3server import S3Server, start_s3  # noqa: E402
from tests.speech import BOOK, synthesize  # noqa: E402
from tests.workers.cluster import (  # noqa: E402
    Submitter,
    cluster_env,
    start_remote_worker,
    start_web,
    wait_for_job,
)
from tests.workers.origin import serve_origin  # noqa: E402
from tests.workers.test_concurrency import (  # noqa: E402
    claimer_ids,
    run_claimers,
    start_pair,
    submit_jobs,
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_claims(
    root: Path, s3: S3Server, database: str, *, claimers: int, jobs: int, pg: PgServer | None
) -> dict[str, object]:
    env = cluster_env(s3, s3.new_bucket(), lease_seconds=3600, ids=claimer_ids(claimers))
    if pg is not None:
        env["DATABASE_URL"] = pg.create_database()
    else:
        env["VOXHELM_DATABASE_PATH"] = str(root / "claims.sqlite3")
    servers = start_pair(root, env)
    try:
        submit_jobs(servers[0], jobs)
        started = time.perf_counter()
        run = run_claimers(servers, claimer_ids(claimers))
        elapsed = time.perf_counter() - started
    finally:
        for server in servers:
            server.stop()
    claimed = run.claimed
    return {
        "database": database,
        "claimers": claimers,
        "jobs": jobs,
        "claimed": len(claimed),
        "double_claims": len(claimed) - len(set(claimed)),
        "errors": len(run.errors),
        "claim_p50_ms": round(1000 * statistics.median(run.latencies), 1),
        "claim_p99_ms": round(1000 * percentile(run.latencies, 0.99), 1),
        "claims_per_second": round(len(claimed) / elapsed, 1),
    }


def bench_throughput(
    root: Path, s3: S3Server, workers: int, audio: list[bytes]
) -> dict[str, object]:
    env = cluster_env(s3, s3.new_bucket(), lease_seconds=120)
    server = start_web(root / f"web-{workers}", env)
    pool = []
    try:
        pool = [
            start_remote_worker(root / f"workers-{workers}", worker_id, server, env)
            for worker_id in ("atlas", "boreas")[:workers]
        ]
        for worker in pool:  # each loads the default model at start, before its first job
            wait_until_logged(worker, "default STT model", 120)
        time.sleep(1.5)  # and has polled once since (VOXHELM_REMOTE_WORKER_POLL_SECONDS=1)
        with serve_origin() as origin, server.client() as client:
            urls = [origin.add(f"/b{i}.wav", "audio/wav", data) for i, data in enumerate(audio)]
            submit = Submitter(client)
            started = time.perf_counter()
            ids = [submit.url_job(url, task_ref=f"b{i}") for i, url in enumerate(urls)]
            bodies = [wait_for_job(client, job_id, ("succeeded", "failed"), 900) for job_id in ids]
            elapsed = time.perf_counter() - started
    finally:
        for worker in pool:
            worker.stop()
        server.stop()
    failed = [b for b in bodies if b["state"] != "succeeded"]
    by_worker: dict[str, int] = {}
    for body in bodies:
        if body["state"] == "succeeded":
            name = body["result"]["metadata"]["worker_id"]
            by_worker[name] = by_worker.get(name, 0) + 1
    return {
        "workers": workers,
        "jobs": len(ids),
        "failed": len(failed),
        "seconds": round(elapsed, 1),
        "jobs_per_minute": round(60 * len(ids) / elapsed, 1),
        "jobs_by_worker": by_worker,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claimers", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--skip-claims", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as folder:
        root = Path(folder)
        s3 = start_s3(root / "s3")
        wanted = ("postgresql", "both") if not args.skip_claims else ()
        pg = start_postgres() if args.database in wanted else None
        try:
            claims = []
            for database in ("sqlite", "postgresql"):
                if args.database in (database, "both") and not args.skip_claims:
                    claims.append(
                        bench_claims(
                            root / f"claims-{database}",
                            s3,
                            database,
                            claimers=args.claimers,
                            jobs=args.jobs,
                            pg=pg if database == "postgresql" else None,
                        )
                    )
                    print(json.dumps(claims[-1]), flush=True)
            results["claims"] = claims
            if not args.skip_throughput:
                sentences = [BOOK[i % len(BOOK)] for i in range(args.batch)]
                spoken = [synthesize(sentence) for sentence in sentences]
                audio = [speech_in("wav", speech) for speech in spoken]
                seconds = [len(speech.samples) / speech.sample_rate for speech in spoken]
                results["speech_seconds_per_job"] = round(statistics.mean(seconds), 1)
                throughput = []
                for workers in (1, 2):
                    throughput.append(bench_throughput(root, s3, workers, audio))
                    print(json.dumps(throughput[-1]), flush=True)
                results["throughput"] = throughput
                results["scale_out"] = round(
                    throughput[1]["jobs_per_minute"] / throughput[0]["jobs_per_minute"], 3
                )
        finally:
            if pg is not None:
                pg.stop()
            s3.stop()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

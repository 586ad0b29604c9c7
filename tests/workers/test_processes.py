"""The multi-host set-up for real: ``voxhelm web`` in remote_pull mode, two
``voxhelm-remote-worker`` processes, a real S3 server, real speech over real HTTP.

Lease expiry is provoked the way it happens in production: a worker is killed with
SIGKILL (or frozen with SIGSTOP) while a slow origin keeps it busy mid-job.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess, WorkerProcess, wait_until_logged
from tests.media import speech_in
from tests.s3server import S3Server
from tests.speech import long_recording, synthesize, word_error_rate
from tests.workers.cluster import (
    WORKER_IDS,
    Submitter,
    claimed_attempts,
    cluster_env,
    object_keys,
    start_remote_worker,
    start_web,
    wait_for,
    wait_for_job,
)
from tests.workers.origin import Origin, serve_origin

pytestmark = pytest.mark.slow

SENTENCE = "The lighthouse keeper counted seven ships before the storm arrived."
OTHER_SENTENCE = "Please turn on the kitchen lights and open the garden door."


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[tuple[ServerProcess, dict[str, str], str]]:
    bucket = s3_server.new_bucket()
    env = cluster_env(s3_server, bucket)
    server = start_web(tmp_path_factory.mktemp("remote-web"), env)
    yield server, env, bucket
    server.stop()


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with serve_origin() as served:
        yield served


@pytest.fixture(scope="module")
def speech() -> dict[str, bytes]:
    return {
        "one": speech_in("wav", synthesize(SENTENCE)),
        "two": speech_in("wav", synthesize(OTHER_SENTENCE)),
    }


class Pool:
    """Remote worker processes of one test; every one is stopped at the end."""

    def __init__(self, root: Path, server: ServerProcess, env: dict[str, str]) -> None:
        self.root, self.server, self.env = root, server, env
        self.all: list[WorkerProcess] = []

    def start(self, worker_id: str) -> WorkerProcess:
        worker = start_remote_worker(self.root, worker_id, self.server, self.env)
        self.all.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.all:
            worker.stop()


@pytest.fixture
def pool(tmp_path: Path, cluster: tuple[ServerProcess, dict[str, str], str]) -> Iterator[Pool]:
    server, env, _bucket = cluster
    workers = Pool(tmp_path, server, env)
    yield workers
    workers.stop()


def producer(cluster: tuple[ServerProcess, dict[str, str], str]) -> Any:
    return cluster[0].client()


def test_two_workers_transcribe_url_and_uploaded_jobs(
    cluster: tuple[ServerProcess, dict[str, str], str],
    pool: Pool,
    origin: Origin,
    speech: dict[str, bytes],
    s3_server: S3Server,
) -> None:
    for worker_id in WORKER_IDS:
        worker = pool.start(worker_id)
        # The default model loads at start, so the first job does not wait for it.
        wait_until_logged(worker, "default STT model tiny.en (fasterwhisper) loaded", 120)
    client = producer(cluster)
    submit = Submitter(client)
    url_one = origin.add("/normal/one.wav", "audio/wav", speech["one"])
    url_two = origin.add("/normal/two.wav", "audio/wav", speech["two"])
    jobs = {
        submit.url_job(url_one, output={"formats": ["text", "json", "vtt"]}): SENTENCE,
        submit.url_job(url_two, task_ref="two"): OTHER_SENTENCE,
        submit.upload_job(speech["one"], filename="keeper.wav"): SENTENCE,
    }
    for job_id, sentence in jobs.items():
        body = wait_for_job(client, job_id, ("succeeded", "failed"), timeout=180)
        assert body["state"] == "succeeded", body
        assert word_error_rate(sentence, body["result"]["text"]) < 0.25
        metadata = body["result"]["metadata"]
        assert metadata["execution_mode"] == "remote_pull"
        assert metadata["worker_id"] in WORKER_IDS
        assert metadata["attempt"] == 1
        assert (metadata["backend"], metadata["model"]) == ("fasterwhisper", "tiny.en")
        text = client.get(body["result"]["artifacts"]["text"])
        assert text.status_code == 200
        assert word_error_rate(sentence, text.text) < 0.25
    first = client.get(f"/v1/jobs/{next(iter(jobs))}").json()
    vtt = client.get(first["result"]["artifacts"]["vtt"])
    assert vtt.text.startswith("WEBVTT")
    assert vtt.headers["content-type"] == "text/vtt; charset=utf-8"
    upload_job = list(jobs)[2]
    upload_meta = client.get(f"/v1/jobs/{upload_job}").json()["result"]["metadata"]
    assert (upload_meta["source_kind"], upload_meta["source_name"]) == ("upload", "keeper.wav")
    bucket = cluster[2]
    # The staged upload was used up: deleted right after the committed completion.
    wait_for(
        lambda: object_keys(s3_server, bucket, "voxhelm/staged-inputs/") == [],
        30,
        "the staged upload deleted",
    )
    assert object_keys(s3_server, bucket, f"voxhelm/jobs/{upload_job}/") == [
        f"voxhelm/jobs/{upload_job}/attempt-1/{name}"
        for name in ("source.wav", "transcript.json", "transcript.txt")
    ]


def test_a_killed_workers_job_is_claimed_again_and_finished_once(
    cluster: tuple[ServerProcess, dict[str, str], str],
    pool: Pool,
    origin: Origin,
    speech: dict[str, bytes],
    s3_server: S3Server,
) -> None:
    workers = [pool.start(worker_id) for worker_id in WORKER_IDS]
    client = producer(cluster)
    url = origin.add("/kill/one.wav", "audio/wav", speech["one"], stalls=1)
    job_id = Submitter(client).url_job(url)
    first = wait_for(lambda: claimed_attempts(workers, job_id).get(1), 30, "attempt 1")
    time.sleep(1.5)  # downloading from the slow origin, beating its lease
    assert wait_for_job(client, job_id, ("running",), timeout=5)["state"] == "running"
    first.kill()  # SIGKILL: no goodbye, no failure report
    body = wait_for_job(client, job_id, ("succeeded", "failed"), timeout=120)
    assert body["state"] == "succeeded", body
    second = claimed_attempts(workers, job_id)[2]
    assert second is not first
    assert body["result"]["metadata"]["attempt"] == 2
    assert word_error_rate(SENTENCE, body["result"]["text"]) < 0.25
    assert origin.count("/kill/one.wav") == 2
    keys = object_keys(s3_server, cluster[2], f"voxhelm/jobs/{job_id}/")
    assert keys == [
        f"voxhelm/jobs/{job_id}/attempt-2/{name}"
        for name in ("source.wav", "transcript.json", "transcript.txt")
    ]
    assert 3 not in claimed_attempts(workers, job_id)


def test_a_reclaimed_long_job_resumes_from_the_chunks_the_killed_worker_finished(
    cluster: tuple[ServerProcess, dict[str, str], str],
    pool: Pool,
    origin: Origin,
    s3_server: S3Server,
) -> None:
    pool.env = {**pool.env, "VOXHELM_CHUNK_SECONDS": "10", "VOXHELM_CHUNK_WORKERS": "1"}
    speech = long_recording()
    url = origin.add("/long/episode.mp3", "audio/mpeg", speech_in("mp3", speech))
    client = producer(cluster)
    first = pool.start(WORKER_IDS[0])
    job_id = Submitter(client).url_job(url)
    folder = f"voxhelm/checkpoints/{job_id}/"
    wait_for(lambda: len(object_keys(s3_server, cluster[2], folder)) >= 2, 300, "2 chunks")
    first.kill()  # SIGKILL: the lease runs out, another worker claims the job
    kept = len(object_keys(s3_server, cluster[2], folder))
    second = pool.start(WORKER_IDS[1])
    body = wait_for_job(client, job_id, ("succeeded", "failed"), timeout=300)
    assert body["state"] == "succeeded", body
    assert body["result"]["metadata"]["attempt"] == 2
    restored = re.search(r"chunks: (\d+) of (\d+) restored", second.log())
    assert restored is not None, second.log()
    assert int(restored.group(1)) >= kept >= 2
    assert word_error_rate(speech.text, body["result"]["text"]) <= 0.1
    # Dropped right after the completion's commit, which the producer may see first.
    wait_for(
        lambda: object_keys(s3_server, cluster[2], folder) == [], 30, "the checkpoints dropped"
    )


def test_a_poison_job_gets_exactly_max_attempts(
    cluster: tuple[ServerProcess, dict[str, str], str], pool: Pool, origin: Origin
) -> None:
    """A job that takes its worker down every time: three attempts, then failed."""
    for worker_id in WORKER_IDS:
        pool.start(worker_id)
    client = producer(cluster)
    origin.stall_seconds = 60
    url = origin.add("/poison/one.wav", "audio/wav", b"RIFF" + b"\0" * 4000, stalls=100)
    job_id = Submitter(client).url_job(url)
    for attempt in (1, 2, 3):
        holder = wait_for(
            lambda n=attempt: claimed_attempts(pool.all, job_id).get(n), 60, f"attempt {attempt}"
        )
        time.sleep(0.5)
        holder.kill()
        replacement_id = next(w for w in WORKER_IDS if f"/{w}/" in str(holder.log_path))
        pool.start(replacement_id)
    body = wait_for_job(client, job_id, ("failed", "succeeded"), timeout=60)
    assert body["state"] == "failed"
    assert body["error"]["message"] == "Remote worker lease expired after maximum attempts."
    time.sleep(2)  # a fourth claim would come within a poll or two
    assert sorted(claimed_attempts(pool.all, job_id)) == [1, 2, 3]
    assert origin.count("/poison/one.wav") == 3


def test_a_frozen_workers_late_result_is_refused(
    cluster: tuple[ServerProcess, dict[str, str], str],
    pool: Pool,
    origin: Origin,
    speech: dict[str, bytes],
) -> None:
    workers = [pool.start(worker_id) for worker_id in WORKER_IDS]
    client = producer(cluster)
    origin.stall_seconds = 4
    url = origin.add("/zombie/two.wav", "audio/wav", speech["two"], stalls=1)
    job_id = Submitter(client).url_job(url)
    zombie = wait_for(lambda: claimed_attempts(workers, job_id).get(1), 30, "attempt 1")
    zombie.process.send_signal(signal.SIGSTOP)  # frozen: no beats, the lease runs out
    try:
        body = wait_for_job(client, job_id, ("succeeded", "failed"), timeout=120)
    finally:
        zombie.process.send_signal(signal.SIGCONT)
    assert body["state"] == "succeeded"
    assert body["result"]["metadata"]["attempt"] == 2
    winner = body["result"]
    wait_for(
        lambda: "lease lost" in zombie.log() or "completion refused" in zombie.log(),
        30,
        "the thawed worker to learn it lost the lease",
    )
    again = client.get(f"/v1/jobs/{job_id}").json()
    assert again["state"] == "succeeded"
    assert again["result"] == winner


def test_sigterm_hands_the_running_job_back_at_once(
    cluster: tuple[ServerProcess, dict[str, str], str],
    pool: Pool,
    origin: Origin,
    speech: dict[str, bytes],
) -> None:
    """A stopped worker reports a retryable failure instead of letting its lease run out."""
    first = pool.start(WORKER_IDS[0])
    client = producer(cluster)
    origin.stall_seconds = 3
    url = origin.add("/sigterm/one.wav", "audio/wav", speech["one"], stalls=1)
    job_id = Submitter(client).url_job(url)
    wait_for(lambda: claimed_attempts([first], job_id).get(1), 30, "attempt 1")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0
    assert "reported retryable failure: worker_stopped" in first.log()
    # Back in the queue at once: no lease expiry needed (the lease would still be live).
    assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"
    second = pool.start(WORKER_IDS[1])
    body = wait_for_job(client, job_id, ("succeeded", "failed"), timeout=120)
    assert body["state"] == "succeeded"
    assert body["result"]["metadata"]["attempt"] == 2
    assert claimed_attempts([second], job_id).get(2) is second

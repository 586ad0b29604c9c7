"""One iteration of the remote worker: heartbeat, claim, run the leased job, report it.

A leased job runs the batch core (``voxhelm.batch.transcribe``, or ``voxhelm.batch.synthesize``
for a synthesis job) with an :class:`UploadSink`:
each artifact is written to the shared store under the claim's attempt prefix and recorded
in the manifest; each checkpoint tells the :class:`LeaseKeeper` the phase (its thread beats
the lease while inference runs) and stops the run when the lease was lost or the worker is
shutting down. The end is reported once: ``complete`` with the manifest, or ``fail``.

Failures: a domain error (bad media, a refused URL, failed diarization) is terminal and its
client-safe message is reported; an unavailable engine, a busy lane, a store or network
problem is retryable (another attempt, maybe on another worker, may succeed); any other
error is retryable and reported with an error id whose traceback is in this worker's log.
A stop (SIGTERM) reports a retryable failure, so the job goes back to the queue at once
instead of waiting for its lease to expire.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from voxhelm.batch.failures import classify
from voxhelm.batch.inputs import batch_fetch_policy
from voxhelm.batch.request import (
    DiarizationRequest,
    JobOutputs,
    JobRequest,
    SynthesisRequest,
    UploadSource,
    UrlSource,
)
from voxhelm.batch.sink import DOWNLOADING, ENCODING, LAST, RENDERING, Artifact, Sink
from voxhelm.batch.synthesize import synthesize_speech
from voxhelm.batch.transcribe import Outcome, transcribe_media
from voxhelm.config import Config
from voxhelm.fetch import FetchedFile, check_url, fetch_to_file
from voxhelm.remote_worker.client import ApiFailure, Unreachable, WorkerClient
from voxhelm.storage.base import CHUNK_BYTES, ArtifactStore
from voxhelm.storage.checkpoints import StoreCheckpoints
from voxhelm.storage.stores import store_for_identity
from voxhelm.workdirs import Workdir, sweep
from voxhelm.worker_protocol.capabilities import advertised
from voxhelm.worker_protocol.limits import MAX_ERROR_CHARS
from voxhelm.worker_protocol.messages import (
    CLAIM_PATH,
    WORKER_HEARTBEAT_PATH,
    ClaimedJob,
    ClaimedTextInput,
    ClaimedUploadInput,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    FailRequest,
    JobHeartbeat,
    JobHeartbeatResponse,
    ManifestArtifact,
    Progress,
    WorkerHeartbeat,
    WorkerHeartbeatResponse,
    complete_path,
    fail_path,
    job_heartbeat_path,
)

logger = logging.getLogger("voxhelm.remote_worker")

LEASE_LOST_STATUSES = (401, 403, 404, 409)
MIN_BEAT_SECONDS = 0.5


class LeaseLost(Exception):
    """The server no longer holds the lease for this worker: stop, report nothing."""


class Stopping(Exception):
    """The worker is shutting down: stop at the next checkpoint."""


@dataclass
class Settings:
    """How this worker runs (from flags and environment)."""

    worker_id: str
    hostname: str = field(default_factory=socket.gethostname)
    poll_seconds: float = 5.0
    heartbeat_interval_seconds: float = 60.0


class LeaseKeeper:
    """Beats a job's lease from a thread while the job runs; also at once on a new phase."""

    def __init__(self, client: WorkerClient, job: ClaimedJob, interval: float) -> None:
        self._client = client
        self._job = job
        self._interval = max(MIN_BEAT_SECONDS, interval)
        self._progress = Progress()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job.id}", daemon=True)
        self.lost = False

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join()

    def report(self, phase: str, percent: int, eta_seconds: float | None = None) -> None:
        changed = phase != self._progress.phase
        self._progress = Progress(phase=phase, percent=percent, eta_seconds=eta_seconds)
        if changed:
            self._wake.set()

    def _run(self) -> None:
        while not self._done.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._done.is_set():
                return
            self.beat()

    def beat(self) -> None:
        body = JobHeartbeat(lease_token=self._job.lease_token, progress=self._progress)
        try:
            self._client.post(job_heartbeat_path(self._job.id), body, JobHeartbeatResponse)
        except (ApiFailure, Unreachable) as exc:
            if isinstance(exc, ApiFailure) and exc.status in LEASE_LOST_STATUSES:
                logger.warning("job %s: lease lost (%s)", self._job.id, exc.message)
                self.lost = True
                self._done.set()
                return
            # The lease has slack for missed beats; the next one may get through.
            logger.warning("job %s: lease heartbeat failed: %s", self._job.id, exc)


class UploadSink(Sink):
    """The core's sink on a worker: artifacts go to the shared store under the attempt
    prefix, progress goes to the lease keeper."""

    def __init__(
        self, job: ClaimedJob, store: ArtifactStore, keeper: LeaseKeeper, stop: threading.Event
    ) -> None:
        # Chunk checkpoints go to the shared store where the server says, so that the next
        # attempt finds them whichever worker runs it.
        super().__init__(StoreCheckpoints(store, job.checkpoint_prefix))
        self._job = job
        self._store = store
        self._keeper = keeper
        self._stop = stop
        self.manifest: list[ManifestArtifact] = []

    def checkpoint(self, phase: str, percent: int, eta_seconds: float | None = None) -> None:
        if self._keeper.lost:
            raise LeaseLost
        if self._stop.is_set():
            raise Stopping
        self._keeper.report(phase, percent, eta_seconds)

    def keep(self, artifact: Artifact, data: bytes | Path) -> None:
        key = f"{self._job.artifact_prefix}{artifact.name}"
        if isinstance(data, Path):
            stored = self._store.put_file(key, data, artifact.content_type)
        else:
            stored = self._store.put_bytes(key, data, artifact.content_type)
        self.manifest = [entry for entry in self.manifest if entry.name != artifact.name]
        self.manifest.append(
            ManifestArtifact(
                name=artifact.name,
                kind=artifact.kind,
                format=artifact.format,
                storage_backend=str(self._job.artifact_store.get("backend", "")),
                storage_key=key,
                content_type=artifact.content_type,
                size_bytes=stored.size,
                sha256=stored.sha256,
                exposed=artifact.exposed,
            )
        )


def materialize(job: ClaimedJob, config: Config, workdir: Path) -> FetchedFile:
    """The job's input as a local file: a URL through the guarded fetcher (this worker's
    allowlist), or the staged upload read from the shared store and verified."""
    if isinstance(job.input, ClaimedTextInput):
        raise TypeError("a synthesis job fetches nothing")
    if isinstance(job.input, ClaimedUploadInput):
        staged = job.input.staged_artifact
        store = store_for_identity(staged.storage_identity, config.artifacts)
        suffix = PurePosixPath(job.input.filename).suffix.lower()[:16]
        path = workdir / f"upload{suffix}"
        with (
            store.open_verified(staged.storage_key, staged.sha256, job.input.size_bytes) as src,
            path.open("wb") as out,
        ):
            shutil.copyfileobj(src, out, CHUNK_BYTES)
        return FetchedFile(
            path=path,
            final_url="",
            content_type=job.input.content_type,
            size=job.input.size_bytes,
            filename=job.input.filename,
        )
    policy = batch_fetch_policy(config)
    check_url(job.input.url, policy)
    return fetch_to_file(job.input.url, policy, workdir)


def _request_of(job: ClaimedJob) -> JobRequest:
    """The claimed job's request, with the concrete model the server resolved."""
    source: UrlSource | UploadSource
    if isinstance(job.input, ClaimedUploadInput):
        upload = job.input
        source = UploadSource(None, upload.filename, upload.content_type, upload.size_bytes)
    elif isinstance(job.input, ClaimedTextInput):
        raise TypeError("a synthesis job has no media request")
    else:
        source = UrlSource(job.input.url)
    diarization = DiarizationRequest.from_stored(job.output.diarization)
    outputs = JobOutputs(tuple(job.output.formats), diarization)
    return JobRequest(source, outputs, job.model, job.language, job.prompt)


def result_metadata(outcome: Outcome, job: ClaimedJob) -> dict[str, object]:
    metadata: dict[str, object] = outcome.metadata(job.requested_model, job.language)
    metadata.update(
        source_name=outcome.source_name, source_content_type=outcome.source_content_type
    )
    if outcome.known_speaker_summary is not None:
        metadata["diarization"] = {"known_speaker_summary": outcome.known_speaker_summary}
    return metadata


def beat_interval(claim: ClaimResponse, configured: float) -> float:
    """A third of the lease (so two beats may fail), at most the configured interval."""
    try:
        expires = datetime.fromisoformat(claim.job.lease_expires_at.replace("Z", "+00:00"))
        now = datetime.fromisoformat(str(claim.server_time).replace("Z", "+00:00"))
    except ValueError:
        return configured
    return max(MIN_BEAT_SECONDS, min(configured, (expires - now).total_seconds() / 3))


class Runner:
    """Polls the server and runs leased jobs, one at a time."""

    def __init__(
        self, config: Config, client: WorkerClient, settings: Settings, stop: threading.Event
    ) -> None:
        self.config = config
        self.client = client
        self.settings = settings
        self.stop = stop
        self.capabilities = advertised(config)

    def heartbeat(self) -> None:
        body = WorkerHeartbeat(
            worker_id=self.settings.worker_id,
            hostname=self.settings.hostname,
            concurrency=1,
            running_job_ids=[],
            capabilities=self.capabilities,
        )
        answer = self.client.post(WORKER_HEARTBEAT_PATH, body, WorkerHeartbeatResponse)
        if answer is not None and answer.poll_after_seconds > 0:
            self.settings.poll_seconds = float(answer.poll_after_seconds)

    def iterate(self) -> bool:
        """Heartbeat, claim, and run the claimed job; False when there was no work."""
        self.heartbeat()
        claim = self.client.post(
            CLAIM_PATH,
            ClaimRequest(
                worker_id=self.settings.worker_id, max_jobs=1, capabilities=self.capabilities
            ),
            ClaimResponse,
        )
        if claim is None:
            return False
        self.process(claim)
        return True

    def process(self, claim: ClaimResponse) -> None:
        job = claim.job
        logger.info(
            "job %s: attempt %d claimed (%s %s)", job.id, job.attempt, job.backend, job.model
        )
        interval = beat_interval(claim, self.settings.heartbeat_interval_seconds)
        # A crashed earlier attempt on this host may have left its copy of the input.
        sweep(when=f"before job {job.id} attempt {job.attempt}")
        with LeaseKeeper(self.client, job, interval) as keeper, Workdir("remote") as folder:
            try:
                body = self._run(job, keeper, folder)
            except LeaseLost:
                logger.warning("job %s: stopped, the lease was lost", job.id)
                return
            except Stopping:
                self._fail(
                    job, "The worker was stopped before the job finished.", True, "worker_stopped"
                )
                return
            except Exception as exc:
                failure = classify(
                    exc, log=logger, job=job.id, subject="worker", io_errors=(Unreachable,)
                )
                self._fail(job, failure.message, failure.retryable, failure.code)
                return
            if keeper.lost:
                logger.warning("job %s: finished, but the lease was lost; result dropped", job.id)
                return
            # The last step's own name (the reference's "complete" reads as rendering, which a
            # synthesis job never does).
            last = ENCODING if isinstance(job.input, ClaimedTextInput) else RENDERING
            keeper.report(last, 100)
        self._complete(job, body)

    def _run(self, job: ClaimedJob, keeper: LeaseKeeper, workdir: Path) -> CompleteRequest:
        store = store_for_identity(job.artifact_store, self.config.artifacts)
        sink = UploadSink(job, store, keeper, self.stop)
        if isinstance(job.input, ClaimedTextInput):
            output = job.output
            request = SynthesisRequest(
                job.input.text, output.voice, output.speed, tuple(output.formats)
            )
            text, metadata = synthesize_speech(request, job.language, sink, self.config)
        else:
            sink.checkpoint(DOWNLOADING, 0)
            fetched = materialize(job, self.config, workdir)
            outcome = transcribe_media(fetched, _request_of(job), sink, self.config, workdir)
            sink.checkpoint(RENDERING, LAST)
            text, metadata = outcome.text, result_metadata(outcome, job)
        return CompleteRequest(
            worker_id=self.settings.worker_id,
            lease_token=job.lease_token,
            result_text=text,
            result_metadata=metadata,
            artifacts=sink.manifest,
        )

    def _complete(self, job: ClaimedJob, body: CompleteRequest) -> None:
        try:
            self.client.post_raw(complete_path(job.id), body.model_dump(mode="json"))
        except ApiFailure as exc:
            if exc.status in LEASE_LOST_STATUSES:
                logger.warning("job %s: completion refused: %s", job.id, exc.message)
                return
            if exc.status == 400:  # the server refused the manifest: this attempt is broken
                logger.error("job %s: completion rejected: %s", job.id, exc.message)
                self._fail(job, exc.message, True, "invalid_manifest")
                return
            raise
        logger.info("job %s: completed", job.id)

    def _fail(self, job: ClaimedJob, detail: str, retryable: bool, code: str) -> None:
        body = FailRequest(
            worker_id=self.settings.worker_id,
            lease_token=job.lease_token,
            retryable=retryable,
            error_detail=detail[:MAX_ERROR_CHARS],
            error_code=code,
        )
        try:
            self.client.post_raw(fail_path(job.id), body.model_dump(mode="json"))
        except ApiFailure as exc:
            if exc.status in LEASE_LOST_STATUSES:
                logger.warning("job %s: failure report refused: %s", job.id, exc.message)
                return
            raise
        logger.info(
            "job %s: reported %s failure: %s",
            job.id,
            "retryable" if retryable else "terminal",
            code,
        )

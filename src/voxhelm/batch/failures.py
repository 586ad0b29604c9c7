"""How a failed batch run is reported: one classification for the server and the remote worker.

A domain error (bad media, a refused URL, failed diarization) keeps its own client-safe
message and is terminal; an unavailable engine or a busy lane is retryable (another attempt,
maybe elsewhere, may succeed). A store, disk or network problem and any other error get a
generic message naming an error id; the log has the detail under that id, the client never
sees a path, an endpoint or a traceback.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from voxhelm.errors import Busy, ServiceUnavailable, VoxhelmError
from voxhelm.storage.base import StoreError


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    retryable: bool


def classify(
    exc: Exception,
    *,
    log: logging.Logger,
    job: str,
    subject: str = "job",
    io_errors: tuple[type[Exception], ...] = (),
) -> Failure:
    """The failure ``exc`` means for ``job``, logged; ``subject`` names who failed in the
    internal-error message ("job" on the server, "worker" on a remote worker), ``io_errors``
    are the caller's own transport errors (treated like a store error)."""
    if isinstance(exc, ServiceUnavailable | Busy):
        log.info("job %s: failed, may be retried: %s", job, exc.code)
        return Failure(exc.code, exc.message, retryable=True)
    if isinstance(exc, VoxhelmError):
        log.info("job %s: failed: %s", job, exc.code)
        return Failure(exc.code, exc.message, retryable=False)
    error_id = secrets.token_hex(6)
    if isinstance(exc, (StoreError, OSError, *io_errors)):
        # The artifact store is down or full, or the network failed.
        log.error("job %s: storage error id=%s: %s", job, error_id, exc)
        message = f"The worker could not store or fetch data (error id {error_id})."
        return Failure("worker_io_error", message, retryable=True)
    log.error("job %s: internal error id=%s", job, error_id, exc_info=exc)
    message = f"The {subject} failed because of an internal error (error id {error_id})."
    return Failure("internal_error", message, retryable=True)

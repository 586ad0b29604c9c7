"""Job callbacks: when a job with a ``callback_url`` ends, its representation is POSTed there.

Delivery is an outbox: a finished job with a callback becomes ``pending``, and a dispatcher
thread in every server process (``serve``, ``web``, ``worker``) sends what is due, so every
way a job can end (its attempt, a cancel, the sweeper giving up, a remote worker) is covered
without a hook in each. A delivery is claimed with a conditional UPDATE of
``webhook_next_at`` (so two processes never send one attempt twice); a 2xx answer delivers
it, anything else is retried with backoff up to ``VOXHELM_WEBHOOK_MAX_ATTEMPTS`` times;
every attempt is recorded on the job and shown to its producer.

The request goes through the guarded fetcher (``VOXHELM_WEBHOOK_ALLOWED_HOSTS``, resolved
address checks, a deadline; redirects are not followed) and carries::

    X-Voxhelm-Event: job.succeeded | job.failed | job.canceled
    X-Voxhelm-Delivery: <job id>.<attempt>
    X-Voxhelm-Timestamp: <unix seconds>
    X-Voxhelm-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">

keyed with ``VOXHELM_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from voxhelm.config import Config
from voxhelm.errors import InvalidInput, VoxhelmError
from voxhelm.fetch import FetchPolicy, check_url, post_json
from voxhelm.jobs.models import Job
from voxhelm.jobs.periodic import start_periodic
from voxhelm.jobs.schemas import represent
from voxhelm.netpolicy import UrlNotAllowed

logger = logging.getLogger("voxhelm.webhooks")

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
BACKOFF_SECONDS = (10, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
"""Wait after attempt 1, 2, ...; the last value repeats."""
BATCH = 20  # deliveries one pass sends at most
POLL_SECONDS = 1.0
MAX_RESPONSE_BYTES = 64 * 1024


def webhook_policy(config: Config) -> FetchPolicy:
    timeout = config.webhooks.timeout_seconds
    return FetchPolicy(
        allowed_hosts=config.webhooks.allowed_hosts,
        trusted_http_hosts=config.fetch.trusted_http_hosts,
        max_bytes=MAX_RESPONSE_BYTES,
        connect_timeout=min(5.0, timeout),
        read_timeout=timeout,
        total_timeout=timeout,
        max_redirects=0,
    )


def check_callback(url: str, config: Config) -> str:
    """The normalized callback URL, or a 400 (webhooks not configured, URL not allowed)."""
    if not config.webhooks.secret:
        raise InvalidInput(
            "callback_url needs VOXHELM_WEBHOOK_SECRET to be set on the server.",
            param="callback_url",
            code="webhooks_disabled",
        )
    try:
        return check_url(url, webhook_policy(config))
    except UrlNotAllowed as exc:
        raise UrlNotAllowed(exc.message, param="callback_url", code=exc.code) from None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``<timestamp>.<body>``."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def deliver_due(config: Config, now: datetime | None = None) -> int:
    """Arm finished jobs' callbacks and send the deliveries that are due; returns how many
    were attempted."""
    now = now or timezone.now()
    Job.objects.filter(callback_url__gt="", webhook_state="", finished_at__isnull=False).update(
        webhook_state=PENDING, webhook_next_at=now
    )
    due = Job.objects.filter(webhook_state=PENDING, webhook_next_at__lte=now).order_by(
        "webhook_next_at"
    )[:BATCH]
    sent = 0
    for job in due:
        lease = now + timedelta(seconds=config.webhooks.timeout_seconds + 30)
        claimed = Job.objects.filter(
            pk=job.pk, webhook_state=PENDING, webhook_next_at=job.webhook_next_at
        ).update(webhook_next_at=lease)
        if claimed:
            job.refresh_from_db()
            deliver(job, config)
            sent += 1
    return sent


def deliver(job: Job, config: Config) -> bool:
    """One delivery attempt for ``job``; records it and schedules the next if it failed."""
    attempt = len(job.webhook_attempts) + 1
    body = json.dumps(represent(job), separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(time.time())
    headers = {
        "X-Voxhelm-Event": f"job.{job.state}",
        "X-Voxhelm-Delivery": f"{job.pk}.{attempt}",
        "X-Voxhelm-Timestamp": str(timestamp),
        "X-Voxhelm-Signature": sign(config.webhooks.secret, timestamp, body),
    }
    started = time.monotonic()
    record: dict[str, Any] = {"attempt": attempt, "at": timezone.now().isoformat()}
    try:
        status = post_json(job.callback_url, body, webhook_policy(config), headers=headers)
        record["status"] = status
        ok = 200 <= status < 300
        if not ok:
            record["error"] = f"The receiver answered HTTP {status}."
    except VoxhelmError as exc:  # not allowed any more, unreachable, timed out
        ok = False
        record["error"] = exc.message
    record["duration_ms"] = round((time.monotonic() - started) * 1000)
    attempts = [*job.webhook_attempts, record]
    if ok:
        state, next_at = DELIVERED, None
    elif attempt >= config.webhooks.max_attempts:
        state, next_at = FAILED, None
    else:
        wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
        state, next_at = PENDING, timezone.now() + timedelta(seconds=wait)
    Job.objects.filter(pk=job.pk).update(
        webhook_state=state, webhook_next_at=next_at, webhook_attempts=attempts
    )
    log = logger.info if ok else logger.warning
    log(
        "job %s: callback attempt %d: %s",
        job.pk,
        attempt,
        record.get("status", record.get("error")),
    )
    return ok


def start_dispatcher(config: Config, stop: threading.Event | None = None) -> threading.Thread:
    """Send due callbacks every second in a daemon thread (one per server process)."""
    return start_periodic(
        "voxhelm-webhooks", POLL_SECONDS, lambda: deliver_due(config), stop, wait_first=True
    )

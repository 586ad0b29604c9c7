"""A local worker's presence row: written at start, refreshed by a thread of its own while the
worker loop is idle or busy, deleted at a clean stop; rows of killed workers are cleared."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from voxhelm.config import Config
from voxhelm.jobs.models import LocalWorker
from voxhelm.jobs.worker import Presence

pytestmark = pytest.mark.django_db(transaction=True)  # the beating thread has a connection


@pytest.fixture
def config(configure: Callable[..., Config]) -> Config:
    return configure(VOXHELM_JOB_HEARTBEAT_SECONDS="0.1", VOXHELM_JOB_STALE_SECONDS="5")


def last_seen(worker_id: str) -> list[object]:
    return list(LocalWorker.objects.filter(pk=worker_id).values_list("last_seen_at", flat=True))


def test_it_beats_from_start_to_a_clean_stop(config: Config) -> None:
    presence = Presence(config, "host-a:101")
    with presence:
        first = last_seen("host-a:101")
        assert len(first) == 1  # written before start returns
        assert LocalWorker.objects.get().queue_name == "default"
        # Nothing else runs here, as in an idle worker or one busy in a long task: the
        # presence thread alone moves the beat on.
        deadline = time.monotonic() + 10
        while last_seen("host-a:101") == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert last_seen("host-a:101") > first
    assert last_seen("host-a:101") == []
    assert not any(t.name == "voxhelm-worker-presence" for t in threading.enumerate())
    presence.stop()  # a second stop (atexit after SIGTERM) does nothing
    assert LocalWorker.objects.count() == 0


def test_a_start_clears_the_rows_killed_workers_left(config: Config) -> None:
    now = timezone.now()
    LocalWorker.objects.beat("host-a:1", "default", now - timedelta(seconds=6))  # killed
    LocalWorker.objects.beat("host-b:2", "default", now - timedelta(seconds=4))  # alive
    with Presence(config, "host-a:3"):
        assert sorted(LocalWorker.objects.values_list("pk", flat=True)) == ["host-a:3", "host-b:2"]


def test_a_beat_brings_back_a_row_removed_while_the_worker_was_silent(config: Config) -> None:
    with Presence(config, "host-a:101"):
        LocalWorker.objects.all().delete()  # as another worker's start does after a long stall
        deadline = time.monotonic() + 10
        while not last_seen("host-a:101") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(last_seen("host-a:101")) == 1

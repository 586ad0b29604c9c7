"""``voxhelm.capacity``: one place decides what runs, what waits and what is refused."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import make_config
from voxhelm import capacity
from voxhelm.errors import Busy
from voxhelm.lanes import INTERACTIVE, NON_INTERACTIVE


def test_the_admissions_name_their_lane_and_wait() -> None:
    assert capacity.Admission(INTERACTIVE, None) == capacity.VOICE
    assert capacity.Admission(NON_INTERACTIVE, None) == capacity.SYNC  # the configured wait
    assert capacity.Admission(NON_INTERACTIVE, 3600.0) == capacity.BATCH


def test_speech_and_transcription_share_the_limits_but_not_the_threads() -> None:
    config = make_config(VOXHELM_STT_MAX_CONCURRENCY="2", VOXHELM_STT_MAX_WAITING="3")
    speech, stt = capacity.speech_pool(config), capacity.transcription_pool(config)
    assert speech is not stt
    assert (speech.max_workers, speech.max_waiting) == (stt.max_workers, stt.max_waiting) == (2, 3)
    assert capacity.speech_pool(config) is speech  # one per process and configuration


def test_a_speech_response_counts_in_flight_and_the_next_beyond_the_limit_is_refused() -> None:
    config = make_config(VOXHELM_STT_MAX_CONCURRENCY="1", VOXHELM_STT_MAX_WAITING="1")
    pool = capacity.speech_pool(config)
    before = capacity.in_flight()
    pool.admit()
    pool.admit()
    try:
        assert capacity.in_flight() == before + 2
        with pytest.raises(Busy) as refused:
            pool.admit()
        assert refused.value.code == "server_busy"
        assert "speech work" in refused.value.message
    finally:
        pool.release()
        pool.release()
    assert capacity.in_flight() == before


def test_model_work_holds_the_diarization_lock() -> None:
    config = make_config(VOXHELM_LANE_SCHEDULER_ENABLED="false")
    seen: list[bool] = []
    with capacity.model_work(config):
        probe = threading.Thread(target=lambda: seen.append(capacity.diarization_lock.locked()))
        probe.start()
        probe.join()
    assert seen == [True]
    assert not capacity.diarization_lock.locked()


def test_a_request_waits_for_the_diarization_lock_only_as_long_as_for_a_slot() -> None:
    # A batch diarization holds the lock for minutes; a sync request must get its 429 after
    # the configured lane wait, not wait behind it.
    config = make_config(VOXHELM_LANE_SCHEDULER_ENABLED="false", VOXHELM_LANE_WAIT_SECONDS="0.2")
    holding, release = threading.Event(), threading.Event()

    def batch_diarization() -> None:
        with capacity.model_work(config):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=batch_diarization)
    holder.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        outcome: list[BaseException] = []

        def sync_request() -> None:
            try:
                with capacity.model_work(config, capacity.SYNC):
                    pass
            except BaseException as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=sync_request)
        waiter.start()
        waiter.join(5)
        assert not waiter.is_alive(), "the request waited past its lane wait"
        assert len(outcome) == 1 and isinstance(outcome[0], Busy)
        assert outcome[0].code == "server_busy"
        assert 0.15 <= time.monotonic() - started < 2
    finally:
        release.set()
        holder.join()
    assert not capacity.diarization_lock.locked()

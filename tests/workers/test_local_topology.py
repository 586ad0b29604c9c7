"""The single-host set-ups in the default mode (django_tasks), as real processes: ``voxhelm
check`` warns (voxhelm.W005) while no local worker runs - ``voxhelm web`` alone, or after
the worker stopped or was killed - and is silent while ``voxhelm worker`` or ``voxhelm
serve`` runs, before any job has waited."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import start_server, start_worker
from tests.workers.cluster import voxhelm

pytestmark = pytest.mark.slow

# The workers beat five times a second, so that a check with a one-second stale threshold
# shows whether they keep beating (a check process takes seconds to start).
FAST_BEATS = {"VOXHELM_JOB_HEARTBEAT_SECONDS": "0.2"}
SHORT_STALE = {**FAST_BEATS, "VOXHELM_JOB_STALE_SECONDS": "1"}
NO_LOCAL_WORKER = "No local worker on task queue 'default' has been seen"


def local_workers(root: Path) -> list[str]:
    """The ids of the local worker rows in the database under ``root``."""
    with sqlite3.connect(f"file:{root / 'var' / 'db.sqlite3'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT worker_id FROM voxhelm_jobs_localworker").fetchall()
    return sorted(str(row[0]) for row in rows)


def check(root: Path, env: dict[str, str] | None = None) -> str:
    """``voxhelm check`` on the database under ``root``; its warnings (it must pass)."""
    result = voxhelm(root, env or {}, "check")
    assert result.returncode == 0, result.stderr  # a warning, not an error
    return result.stderr


def test_check_follows_the_local_worker_of_voxhelm_web(tmp_path: Path) -> None:
    web = start_server(tmp_path, FAST_BEATS, command="web")
    try:
        alone = check(tmp_path)
        assert alone.count("voxhelm.W005") == 1, alone
        assert f"{NO_LOCAL_WORKER} in the last 30 seconds" in alone
        assert "synthesize and transcribe jobs wait" in alone

        worker = start_worker(tmp_path, FAST_BEATS)
        identity = f":{worker.process.pid}"
        rows = local_workers(tmp_path)
        assert len(rows) == 1 and rows[0].endswith(identity), rows
        served = check(tmp_path)
        assert "voxhelm.W005" not in served, served
        # Its first beat is older than a second by now: only later beats keep it fresh.
        time.sleep(1.5)
        assert "voxhelm.W005" not in check(tmp_path, SHORT_STALE)

        worker.stop()
        assert worker.process.returncode == 0, worker.log()
        assert local_workers(tmp_path) == []  # gone at once, not after 30 s of silence
        assert NO_LOCAL_WORKER in check(tmp_path)

        # A killed worker cannot remove its row: the row goes stale instead.
        killed = start_worker(tmp_path, FAST_BEATS, name="killed")
        assert "voxhelm.W005" not in check(tmp_path, SHORT_STALE)
        killed.kill()
        assert len(local_workers(tmp_path)) == 1
        time.sleep(1.5)
        assert NO_LOCAL_WORKER in check(tmp_path, SHORT_STALE)
    finally:
        web.stop()


def test_check_follows_the_worker_thread_of_voxhelm_serve(tmp_path: Path) -> None:
    server = start_server(tmp_path, FAST_BEATS)
    try:
        assert len(local_workers(tmp_path)) == 1
        time.sleep(1.5)
        served = check(tmp_path, SHORT_STALE)
        assert "voxhelm.W005" not in served, served
    finally:
        server.stop()
    # Stopped as a service manager does: it still ends by the signal, and its row is gone.
    assert server.process.returncode == -signal.SIGTERM, server.log()
    assert local_workers(tmp_path) == []
    assert NO_LOCAL_WORKER in check(tmp_path)


def test_ctrl_c_on_voxhelm_serve_removes_its_row_too(tmp_path: Path) -> None:
    server = start_server(tmp_path, FAST_BEATS)
    try:
        assert len(local_workers(tmp_path)) == 1
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.stop()
        raise
    assert local_workers(tmp_path) == [], server.log()

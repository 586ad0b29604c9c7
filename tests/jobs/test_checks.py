"""Batch settings: strict parsing, the cross-setting check, and workers refusing bad ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_config, process_env
from voxhelm.jobs.checks import job_messages, store_messages


def test_it_reads_the_job_timing_settings() -> None:
    execution = make_config().execution
    assert (
        execution.job_heartbeat_seconds,
        execution.job_stale_seconds,
        execution.job_sweep_seconds,
    ) == (5.0, 30.0, 10.0)
    tuned = make_config(
        VOXHELM_JOB_HEARTBEAT_SECONDS="0.5",
        VOXHELM_JOB_STALE_SECONDS="4",
        VOXHELM_JOB_SWEEP_SECONDS="1",
    ).execution
    assert (tuned.job_heartbeat_seconds, tuned.job_stale_seconds) == (0.5, 4.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VOXHELM_JOB_HEARTBEAT_SECONDS", "soon"),
        ("VOXHELM_JOB_HEARTBEAT_SECONDS", "0"),
        ("VOXHELM_JOB_STALE_SECONDS", "-1"),
        ("VOXHELM_JOB_SWEEP_SECONDS", "nan"),
    ],
)
def test_it_refuses_bad_timing_values(name: str, value: str) -> None:
    assert [p.name for p in make_config(**{name: value}).problems] == [name]


def test_it_reports_a_stale_threshold_too_close_to_the_heartbeat() -> None:
    config = make_config(VOXHELM_JOB_HEARTBEAT_SECONDS="10", VOXHELM_JOB_STALE_SECONDS="20")
    assert [m.id for m in job_messages(config)] == ["voxhelm.E010"]
    assert job_messages(make_config()) == []


def test_it_names_each_missing_s3_setting() -> None:
    messages = job_messages(make_config(VOXHELM_ARTIFACT_BACKEND="s3"))
    assert [m.id for m in messages] == ["voxhelm.E011"]
    assert messages[0].msg == (
        "VOXHELM_ARTIFACT_BACKEND=s3 needs VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID, "
        "VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY."
    )
    complete = make_config(
        VOXHELM_ARTIFACT_BACKEND="s3",
        VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID="key",
        VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY="secret",
    )
    assert job_messages(complete) == []


def test_an_unwritable_artifact_folder_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    config = make_config(VOXHELM_ARTIFACT_ROOT=str(blocker / "artifacts"))
    assert [m.id for m in store_messages(config)] == ["voxhelm.E012"]
    assert store_messages(make_config(VOXHELM_ARTIFACT_ROOT=str(tmp_path / "ok"))) == []


@pytest.mark.slow
def test_voxhelm_worker_refuses_to_start_on_invalid_settings(tmp_path: Path) -> None:
    env = process_env(
        tmp_path, {"VOXHELM_JOB_HEARTBEAT_SECONDS": "20", "VOXHELM_JOB_STALE_SECONDS": "30"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "voxhelm.E010" in result.stderr
    assert "refusing to start" in result.stderr

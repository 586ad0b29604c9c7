"""``voxhelm`` command line: the embedded default starts from nothing; bad settings stop it."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VOXHELM_", "DJANGO_")) and k not in ("DATABASE_URL", "HF_TOKEN")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def voxhelm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_starts_from_nothing_and_prints_a_working_token(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "out.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxhelm.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "Voxhelm is ready" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        output = log.read_text()
        url = f"http://127.0.0.1:{port}"
        assert f"Voxhelm is ready at {url}" in output
        token = re.search(r"Dev token \(kept in var/dev-token\): (\S+)", output)
        assert token is not None, output
        assert f'curl -H "Authorization: Bearer {token[1]}" {url}/v1/health' in output

        ok = httpx.get(f"{url}/v1/health", headers={"Authorization": f"Bearer {token[1]}"})
        assert ok.status_code == 200
        assert ok.json()["status"] == "ok"
        denied = httpx.get(f"{url}/v1/health")
        assert denied.status_code == 401
        assert denied.json()["error"]["type"] == "authentication_error"
        missing = httpx.get(f"{url}/v1/nope", headers={"Authorization": f"Bearer {token[1]}"})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"

        var = tmp_path / "var"
        for name in ("secret-key", "dev-token"):
            assert stat.S_IMODE((var / name).stat().st_mode) == 0o600
        assert (var / "dev-token").read_text().strip() == token[1]
        with sqlite3.connect(var / "db.sqlite3") as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            assert "django_migrations" in tables
        assert token[1] not in output.replace(token[1], "", 2)  # printed twice, never logged
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_on_every_address_prints_a_url_and_token_path_that_work(tmp_path: Path) -> None:
    # As the container image runs it: --host 0.0.0.0, state outside the working directory.
    port = str(free_port())
    var_dir = tmp_path / "state"
    workdir = tmp_path / "work"
    workdir.mkdir()
    log = tmp_path / "out.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxhelm.cli", "serve", "--host", "0.0.0.0", "--port", port],
            cwd=workdir,
            env=clean_env(VOXHELM_VAR_DIR=str(var_dir)),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "Voxhelm is ready" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        output = log.read_text()
        assert f"Voxhelm is ready at http://127.0.0.1:{port} (listening on every address)" in output
        kept = re.search(r"Dev token \(kept in (\S+)\): (\S+)", output)
        assert kept is not None, output
        assert Path(kept[1]) == var_dir / "dev-token"
        assert Path(kept[1]).read_text().strip() == kept[2]
        hint = re.search(r'Try: curl -H "Authorization: Bearer (\S+)" (\S+)', output)
        assert hint is not None, output
        # The printed URL is one the default VOXHELM_ALLOWED_HOSTS accepts as Host header.
        answer = httpx.get(hint[2], headers={"Authorization": f"Bearer {hint[1]}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_keeps_the_same_token_across_restarts(tmp_path: Path) -> None:
    from voxhelm.cli import ensure_dev_token

    env: dict[str, str] = {"VOXHELM_VAR_DIR": str(tmp_path / "var")}
    first = ensure_dev_token(env)
    assert env["VOXHELM_BEARER_TOKENS"] == f"dev={first}"
    again: dict[str, str] = {"VOXHELM_VAR_DIR": str(tmp_path / "var")}
    assert ensure_dev_token(again) == first
    configured = {"VOXHELM_VAR_DIR": str(tmp_path / "var"), "VOXHELM_BEARER_TOKENS": "a=b"}
    assert ensure_dev_token(configured) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"VOXHELM_REMOTE_WORKER_LEASE_SECONDS": "0"}, "VOXHELM_REMOTE_WORKER_LEASE_SECONDS"),
        (
            {"VOXHELM_BEARER_TOKENS": "archive=shared", "VOXHELM_WORKER_TOKENS": "atlas=shared"},
            "must not share bearer token values",
        ),
        ({"VOXHELM_STT_DEBUG_LOGGING": "perhaps"}, "VOXHELM_STT_DEBUG_LOGGING"),
    ],
)
def test_serve_refuses_to_start_on_a_bad_setting(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = voxhelm("serve", "--port", str(free_port()), cwd=tmp_path, env=clean_env(**env))
    assert result.returncode == 1
    assert "refusing to start" in result.stderr
    assert expected in result.stderr
    assert "shared" not in result.stderr.replace("must not share", "")


def test_serve_prints_every_problem_at_once(tmp_path: Path) -> None:
    result = voxhelm(
        "serve",
        cwd=tmp_path,
        env=clean_env(
            VOXHELM_REMOTE_WORKER_LEASE_SECONDS="0",
            VOXHELM_REMOTE_WORKER_POLL_SECONDS="-1",
            VOXHELM_TRANSCRIPTION_EXECUTION_MODE="remote-pull",
        ),
    )
    assert result.returncode == 1
    for name in (
        "VOXHELM_REMOTE_WORKER_LEASE_SECONDS",
        "VOXHELM_REMOTE_WORKER_POLL_SECONDS",
        "VOXHELM_TRANSCRIPTION_EXECUTION_MODE",
    ):
        assert name in result.stderr


def test_check_reports_problems_and_passes_when_clean(tmp_path: Path) -> None:
    bad = voxhelm("check", cwd=tmp_path, env=clean_env(VOXHELM_MAX_UPLOAD_BYTES="lots"))
    assert bad.returncode != 0
    assert "voxhelm.E001" in bad.stderr
    good = voxhelm("check", cwd=tmp_path, env=clean_env(VOXHELM_BEARER_TOKENS="archive=abc"))
    assert good.returncode == 0, good.stderr
    assert "no issues" in good.stdout


def test_manage_passes_commands_through(tmp_path: Path) -> None:
    result = voxhelm("manage", "showmigrations", "auth", cwd=tmp_path, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "auth" in result.stdout

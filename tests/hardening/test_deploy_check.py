"""``manage.py check --deploy`` is clean with production settings, and not without them.

Production settings (see docs/reliability.md): a real ``DJANGO_SECRET_KEY``, debug off, the
public host name in ``VOXHELM_ALLOWED_HOSTS``, ``VOXHELM_HTTPS_ONLY=true`` (behind a TLS
proxy) and ``VOXHELM_HSTS_SECONDS`` set.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_config, process_env

pytestmark = pytest.mark.hardening

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "VOXHELM_DEBUG": "false",
    "VOXHELM_ALLOWED_HOSTS": "voxhelm.example.org",
    "VOXHELM_CSRF_TRUSTED_ORIGINS": "https://voxhelm.example.org",
    "VOXHELM_HTTPS_ONLY": "true",
    "VOXHELM_HSTS_SECONDS": "31536000",
}


def check_deploy(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), "check", "--deploy", "--fail-level", "WARNING"],
        env=process_env(root, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_deploy_check_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = check_deploy(tmp_path, PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deploy_check_warns_without_https_only(tmp_path: Path) -> None:
    result = check_deploy(tmp_path, {**PRODUCTION, "VOXHELM_HTTPS_ONLY": "false"})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for warning in ("security.W008", "security.W012", "security.W016"):
        assert warning in output


def test_https_only_is_read_strictly(tmp_path: Path) -> None:
    config = make_config(tmp_path, VOXHELM_HTTPS_ONLY="yes", VOXHELM_HSTS_SECONDS="60")
    assert (config.http.https_only, config.http.hsts_seconds) == (True, 60)
    assert make_config(tmp_path).http.https_only is False
    bad = make_config(tmp_path, VOXHELM_HTTPS_ONLY="maybe")
    assert [p.name for p in bad.problems] == ["VOXHELM_HTTPS_ONLY"]

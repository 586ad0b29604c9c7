"""``bootstrap_operator``: creates or updates the operator, idempotently, keeping secrets quiet."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.conftest import process_env


def bootstrap(**options: Any) -> str:
    out = StringIO()
    call_command("bootstrap_operator", stdout=out, **options)
    return out.getvalue()


def test_it_creates_a_staff_operator_with_the_password(db: None) -> None:
    assert bootstrap(username="ada", password="first-pass") == "Created operator account: ada\n"
    user = User.objects.get(username="ada")
    assert user.is_staff and user.is_active and not user.is_superuser
    assert user.check_password("first-pass")


def test_it_updates_an_existing_user_idempotently(db: None) -> None:
    User.objects.create_user("ada", password="old", is_active=False, email="old@example.com")
    for _ in range(2):
        out = bootstrap(username=" ada ", password="new-pass", email="ada@example.com")
        assert out == "Updated operator account: ada\n"
    user = User.objects.get(username="ada")
    assert user.is_staff and user.is_active and user.check_password("new-pass")
    assert user.email == "ada@example.com"
    assert User.objects.filter(username="ada").count() == 1


def test_it_never_touches_superuser_status(db: None) -> None:
    User.objects.create_superuser("root", password="x")
    bootstrap(username="root", password="another-pass")
    assert User.objects.get(username="root").is_superuser


def test_it_takes_the_password_from_the_settings(db: None, configure: Any) -> None:
    configure(
        VOXHELM_BOOTSTRAP_OPERATOR_USERNAME="envuser",
        VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD="from-the-env",
    )
    out = bootstrap(username="envuser")
    assert "from-the-env" not in out
    assert User.objects.get(username="envuser").check_password("from-the-env")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"username": " ", "password": "x"}, "A username is required."),
        (
            {"username": "ada"},
            "A password is required. Pass --password or set VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD.",
        ),
    ],
)
def test_it_refuses_incomplete_requests(db: None, options: dict[str, str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        bootstrap(**options)


@pytest.mark.slow
def test_the_cli_reads_a_password_file_and_never_prints_it(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("file-secret-pass\n")
    env = process_env(
        tmp_path,
        {
            "VOXHELM_BOOTSTRAP_OPERATOR_USERNAME": "filed",
            "VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD_FILE": str(secret),
            "VOXHELM_LOG_LEVEL": "debug",
        },
    )
    command = [sys.executable, "-m", "voxhelm.cli", "bootstrap-operator"]
    runs = [
        subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
        for _ in range(2)
    ]
    assert runs[0].stdout.strip() == "Created operator account: filed"
    assert runs[1].stdout.strip() == "Updated operator account: filed"
    for run in runs:
        assert "file-secret-pass" not in run.stdout + run.stderr
    check = (
        "from django.contrib.auth import authenticate; "
        "from django.test import RequestFactory; "
        "print(authenticate(RequestFactory().post('/'), username='filed', "
        "password='file-secret-pass'))"
    )
    verify = subprocess.run(
        [sys.executable, "-m", "voxhelm.cli", "manage", "shell", "-c", check],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert verify.stdout.strip().splitlines()[-1] == "filed"

"""deploy/systemd: the units pass ``systemd-analyze verify`` without a word, keep the sandbox
the docs promise, and score as "OK" in ``systemd-analyze security``. (They cannot be started
here: this machine does not run systemd as its init.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.podman import REPO, require

UNITS = sorted((REPO / "deploy" / "systemd").glob("*.service"))
INSTALLED_VENV = "/opt/voxhelm/.venv"
SANDBOX = (
    "DynamicUser=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "NoNewPrivileges=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet=",
)


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The units as installed, but starting this checkout's commands: verify checks that
    every ExecStart binary exists."""
    assert [unit.name for unit in UNITS] == [
        "voxhelm-remote-worker.service",
        "voxhelm-worker.service",
        "voxhelm-wyoming-stt.service",
        "voxhelm.service",
    ]
    folder = tmp_path_factory.mktemp("units")
    venv = REPO / ".venv"
    assert (venv / "bin" / "voxhelm").exists()
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8").replace(INSTALLED_VENV, str(venv))
        (folder / unit.name).write_text(text, encoding="utf-8")
    return sorted(folder.iterdir())


def test_there_is_a_unit_for_each_command() -> None:
    starts = {
        unit.name: re.search(r"^ExecStart=(\S+)((?: \S+)*)$", unit.read_text(), re.M)
        for unit in UNITS
    }
    commands = {name: f"{Path(found[1]).name}{found[2]}" for name, found in starts.items() if found}
    assert commands == {
        "voxhelm.service": "voxhelm serve --host 127.0.0.1 --port 8000",
        "voxhelm-worker.service": "voxhelm worker",
        "voxhelm-wyoming-stt.service": "voxhelm-wyoming-stt --uri tcp://0.0.0.0:10300",
        "voxhelm-remote-worker.service": (
            "voxhelm-remote-worker --env-file /etc/voxhelm/remote-worker.env"
        ),
    }
    for unit, found in starts.items():
        assert found is not None and found[1].startswith(f"{INSTALLED_VENV}/bin/"), unit


def test_systemd_analyze_verify_is_silent(units: list[Path]) -> None:
    analyze = require("systemd-analyze")
    result = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, check=False
    )
    # Unknown or misspelt directives are only warnings: any output fails the test.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_each_unit_keeps_the_sandbox(units: list[Path], figures: dict[str, Any]) -> None:
    analyze = require("systemd-analyze")
    for unit in units:
        lines = set(unit.read_text(encoding="utf-8").splitlines())
        missing = [directive for directive in SANDBOX if directive not in lines]
        assert not missing, (unit.name, missing)
        assert any(line.startswith("StateDirectory=") for line in lines), unit.name
        assert any(re.fullmatch(r"MemoryMax=\d+[MG]", line) for line in lines), unit.name
        security = subprocess.run(
            [analyze, "security", "--offline=true", "--no-pager", str(unit)],
            capture_output=True,
            text=True,
            check=False,
        )
        score = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", security.stdout)
        assert score is not None, security.stdout + security.stderr
        figures[f"systemd-analyze security exposure, {unit.name}"] = score[1]
        assert float(score[1]) <= 2.0, security.stdout

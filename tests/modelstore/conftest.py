"""Fixtures of the model store tests: the stand-in Hub and ``voxhelm models`` as a process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import process_env
from tests.hubserver import Hub, HubServer


@pytest.fixture
def hub() -> Iterator[Hub]:
    with HubServer() as running:
        yield running


@dataclass
class Cli:
    """``voxhelm models ...`` run as its own process against the stand-in Hub."""

    root: Path
    hub: Hub

    @property
    def cache_dir(self) -> Path:
        return self.root / "var" / "models"

    @property
    def voices_dir(self) -> Path:
        return self.root / "var" / "piper"

    def env(self, **extra: str) -> dict[str, str]:
        env = process_env(self.root, {"HF_ENDPOINT": self.hub.url, **extra})
        env.pop("HF_HUB_OFFLINE", None)
        env.pop("HF_TOKEN", None)
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "voxhelm.cli", "models", *args]

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def start(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def cli(tmp_path: Path, hub: Hub) -> Cli:
    return Cli(tmp_path, hub)

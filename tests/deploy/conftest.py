"""The deployment tests' podman, the image they share (built once per session), and the
figures they measure (printed at the end, reported in docs/deploy-container.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.podman import Podman, require_podman, write_containers_conf

IMAGE = "localhost/voxhelm:test"
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, Any]:
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("deployment figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    binary = require_podman()
    conf = write_containers_conf(tmp_path_factory.mktemp("podman") / "containers.conf")
    return Podman(binary, conf)


@pytest.fixture(scope="session")
def image(podman: Podman, figures: dict[str, Any]) -> str:
    """The image of ./Containerfile, built once for the session (layer cache permitting)."""
    podman.ensure_base_image()
    figures["image build seconds (layer cache permitting)"] = round(podman.build(IMAGE), 1)
    size = int(str(podman.inspect(IMAGE)["Size"]))
    base = int(str(podman.inspect("localhost/voxhelm-test-base:bookworm")["Size"]))
    figures["image size MB"] = round(size / 1e6)
    figures["image size above its base MB"] = round((size - base) / 1e6)
    return IMAGE


@pytest.fixture
def names(podman: Podman) -> Iterator[Any]:
    """Unique names for containers and volumes; all of them are removed after the test."""

    class Names:
        def __init__(self) -> None:
            self.prefix = f"voxhelm-test-{uuid.uuid4().hex[:8]}"
            self.containers: list[str] = []
            self.volumes: list[str] = []

        def container(self, suffix: str) -> str:
            self.containers.append(f"{self.prefix}-{suffix}")
            return self.containers[-1]

        def volume(self, suffix: str) -> str:
            self.volumes.append(f"{self.prefix}-{suffix}")
            return self.volumes[-1]

    created = Names()
    yield created
    for container in created.containers:
        podman.remove_container(container)
    for volume in created.volumes:
        podman.remove_volume(volume)

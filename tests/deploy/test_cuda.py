"""Containerfile.cuda, checked as far as this machine allows: no GPU here, and the NVIDIA
CUDA base image cannot be pulled (no image registry is reachable). So its stages are compared
with ./Containerfile, and it is built for real on the Debian test base instead of the CUDA
one: every instruction runs (the Python install from the distribution, the locked sync, the
final stage). What cannot run here: the CUDA libraries and a GPU (docs/deploy-container.md).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.deploy.podman import BASE_IMAGE, REPO, Podman

pytestmark = [pytest.mark.container, pytest.mark.slow]

CUDA_IMAGE = "localhost/voxhelm:cuda-test"


def read_stages(name: str) -> list[list[str]]:
    """The instructions of each stage, continuation lines joined, comments left out."""
    text = (REPO / name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: list[list[str]] = [[]]
    for line in filter(None, (" ".join(line.split()) for line in joined.splitlines())):
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_its_stages_keep_in_step_with_the_containerfile() -> None:
    cpu = read_stages("Containerfile")
    cuda = read_stages("Containerfile.cuda")
    assert re.fullmatch(
        r"ARG CUDA_BASE_IMAGE=docker\.io/nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu24\.04",
        cuda[0][0],
    )
    assert [stage[0] for stage in cuda[1:]] == [
        "FROM ${CUDA_BASE_IMAGE} AS python",
        "FROM python AS build",
        "FROM python",
    ]
    # The build stage is the same, the final stage differs only in its environment.
    assert cuda[2][1:] == cpu[1][1:]
    assert [i for i in cuda[3][1:] if not i.startswith(("ENV", "HEALTHCHECK"))] == [
        i for i in cpu[2][1:] if not i.startswith(("ENV", "HEALTHCHECK"))
    ]
    assert "VOXHELM_FASTERWHISPER_DEVICE=cuda" in " ".join(cuda[3])


def test_it_builds_and_without_a_gpu_says_so_instead_of_using_the_cpu(
    podman: Podman, names: Any, figures: dict[str, Any]
) -> None:
    podman.ensure_base_image()
    seconds = podman.build(
        CUDA_IMAGE, "Containerfile.cuda", ["--build-arg", f"CUDA_BASE_IMAGE={BASE_IMAGE}"]
    )
    figures["cuda variant build seconds, on the Debian test base"] = round(seconds, 1)
    inspected: Any = podman.inspect(CUDA_IMAGE)
    assert "VOXHELM_FASTERWHISPER_DEVICE=cuda" in inspected["Config"]["Env"]
    assert inspected["Config"]["User"] == "10001:10001"
    name = names.container("cuda")
    podman.run("run", "--detach", "--network=none", "--name", name, CUDA_IMAGE)
    deadline = time.monotonic() + 120
    reason = ""
    while time.monotonic() < deadline:
        check = podman.run("exec", name, "python", "/opt/voxhelm/healthcheck.py", check=False)
        reason = check.stderr.decode()
        if "answered 503 'degraded'" in reason:
            break
        time.sleep(1)
    assert "answered 503 'degraded'" in reason, reason
    logs = podman.run("logs", name).stdout.decode() + podman.run("logs", name).stderr.decode()
    assert "CUDA" in logs
    assert podman.run("healthcheck", "run", name, check=False).returncode != 0

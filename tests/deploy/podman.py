"""Podman for the deployment tests: this machine's quirks, the test base image, the builds.

The image is built and run for real. What differs from a user's ``podman build .`` is only
what this machine needs, and none of it goes into the Containerfile or its defaults:

- no image registry is reachable, so the official Python base image cannot be pulled: the
  base is made here from Debian's packages (mmdebstrap) and passed as ``BASE_IMAGE``;
- the package registries are reached through the host network, behind a TLS-intercepting
  proxy: the host's CA bundle is mounted into the build and named by build arguments;
- podman's default runtime (crun) fails on this machine's cgroup layout, and root here may
  not raise its resource limits, while podman asks for a million open files: a
  containers.conf of the session picks runc, cgroupfs and limits the runtime can set.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/voxhelm-test-base:bookworm"
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
LIMIT = 16384  # open files and processes per container: plenty, and below this host's caps


def require_podman() -> str:
    """The podman binary; skips when there is none, except in CI, where it must be there."""
    podman = shutil.which("podman")
    if podman is None:
        if os.environ.get("CI"):
            pytest.fail("podman is not installed (.ci/run installs it with DEBIAN_PACKAGES)")
        pytest.skip("podman is not installed")
    return podman


def require(tool: str) -> str:
    """A tool the tests need; skips without it, except in CI (.ci/run installs it)."""
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (.ci/run installs it)")
        pytest.skip(f"{tool} is not installed")
    return found


def write_containers_conf(path: Path) -> Path:
    """The session's containers.conf (CONTAINERS_CONF): runtime, cgroups, resource limits."""
    limits = []
    for name, kind in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(kind)[1]
        value = LIMIT if hard == resource.RLIM_INFINITY else min(LIMIT, hard)
        limits.append(f'"{name}={value}:{value}"')
    runtime = 'runtime = "runc"\n' if shutil.which("runc") else ""
    path.write_text(
        f"[containers]\ndefault_ulimits = [{', '.join(limits)}]\n\n"
        f'[engine]\n{runtime}cgroup_manager = "cgroupfs"\n',
        encoding="utf-8",
    )
    return path


def proxy_build_options() -> list[str]:
    """Build arguments and mounts for a TLS-intercepting proxy, when this host has one: the
    CA bundles its own pip and uv are told about (nothing on an ordinary machine)."""
    options: list[str] = []
    for name in ("SSL_CERT_FILE", "PIP_CERT"):
        bundle = os.environ.get(name, "")
        if bundle and Path(bundle).is_file():
            options += ["--build-arg", f"{name}={bundle}"]
            if f"{bundle}:{bundle}:ro" not in options:
                options += ["-v", f"{bundle}:{bundle}:ro"]
    return options


@dataclass
class Podman:
    """The podman command with the session's configuration; every call is logged."""

    binary: str
    conf: Path
    log: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        self.log.append(" ".join(["podman", *args]))
        result = subprocess.run(
            [self.binary, *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')[-3000:]}\n"
                f"{result.stderr.decode(errors='replace')[-3000:]}"
            )
        return result

    def text(self, *args: str, timeout: float = 120) -> str:
        return self.run(*args, timeout=timeout).stdout.decode().strip()

    def inspect(self, name: str, kind: str = "image") -> dict[str, object]:
        found: list[dict[str, object]] = json.loads(self.text(kind, "inspect", name))
        return found[0]

    def exists(self, image: str) -> bool:
        return self.run("image", "exists", image, check=False).returncode == 0

    def ensure_base_image(self) -> None:
        """Make the base image from Debian packages once; later sessions reuse it, so the
        build's layer cache stays valid."""
        if self.exists(BASE_IMAGE):
            return
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            pytest.fail("mmdebstrap is not installed (.ci/run installs it)")
        bootstrap = subprocess.Popen(
            [
                mmdebstrap,
                "--quiet",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                DEBIAN_SUITE,
                "-",
            ],
            stdout=subprocess.PIPE,
        )
        imported = subprocess.run(
            [self.binary, "import", "-", BASE_IMAGE],
            stdin=bootstrap.stdout,
            env=self.env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        assert bootstrap.wait(timeout=60) == 0, "mmdebstrap failed"
        assert imported.returncode == 0, imported.stderr.decode(errors="replace")

    def build(
        self,
        tag: str,
        containerfile: str = "Containerfile",
        build_args: Sequence[str] = (),
        context: Path = REPO,
    ) -> float:
        """Build ``containerfile`` of ``context`` (the repository) as ``tag``; returns the
        seconds taken. The image this replaces is removed, so that sessions do not pile up."""
        previous = self.inspect(tag)["Id"] if self.exists(tag) else None
        started = time.monotonic()
        self.run(
            "build",
            "--format=docker",  # the OCI format has no HEALTHCHECK
            "--network=host",
            "--file",
            str(context / containerfile),
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            *build_args,
            *proxy_build_options(),
            "--tag",
            tag,
            str(context),
            timeout=1800,
        )
        seconds = time.monotonic() - started
        if previous is not None and previous != self.inspect(tag)["Id"]:
            self.run("rmi", str(previous), check=False)
        return seconds

    def remove_container(self, name: str) -> None:
        self.run("rm", "--force", "--volumes", "--time=5", name, check=False)  # anonymous ones

    def remove_volume(self, name: str) -> None:
        self.run("volume", "rm", "--force", name, check=False)

"""deploy/compose.yaml: every profile validated by Compose, its settings and secrets real, its
start order health-based, and the single-host default started for real with podman-compose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from tests.conftest import free_port
from tests.deploy.podman import REPO, Podman, require
from tests.s3server import ACCESS_KEY, SECRET_KEY, start_s3
from tests.speech import synthesize, word_error_rate
from voxhelm.config import load_config

COMPOSE = REPO / "deploy" / "compose.yaml"
PROFILES = {
    None: {"voxhelm"},
    "multi-host": {"voxhelm", "postgres", "s3", "s3-bucket", "web", "worker", "remote-worker"},
}
VOXHELM_SERVICES = {"voxhelm", "s3-bucket", "web", "worker", "remote-worker"}  # our image
SENTENCE = "We recorded a new episode about gardening in the spring."


def compose_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def podman_compose() -> list[str]:
    return [sys.executable, "-m", "podman_compose"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_profile_is_a_valid_compose_file(profile: str | None, tmp_path: Path) -> None:
    """docker-compose 1.29 (Debian's) checks the file against the Compose schema and every
    reference between services; podman-compose, which runs it here, lists the services."""
    profile_args = ["--profile", profile] if profile else []
    # The top-level "name" is newer than docker-compose 1.29's schema: the copy it checks
    # leaves it out (podman-compose and docker compose v2 read it).
    document = compose_file()
    assert document.pop("name") == "voxhelm"
    copy = tmp_path / "compose.yaml"
    copy.write_text(yaml.safe_dump(document), encoding="utf-8")
    checker = [require("docker-compose"), "--project-directory", str(COMPOSE.parent)]
    checked = subprocess.run(
        [*checker, "-f", str(copy), *profile_args, "config", "--services"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert set(checked.stdout.split()) == PROFILES["multi-host"]  # 1.29 lists every service
    listed = subprocess.run(
        [*podman_compose(), "-f", str(COMPOSE), *profile_args, "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert set(yaml.safe_load(listed.stdout)["services"]) == PROFILES[profile]


def test_services_start_in_health_order() -> None:
    services = compose_file()["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            target = services[dependency]
            if rule["condition"] == "service_healthy":
                own = target.get("healthcheck", {})
                # Our image brings its HEALTHCHECK; the others need one here.
                assert not own.get("disable"), f"{name} waits for {dependency}, never healthy"
                assert own.get("test") or dependency in VOXHELM_SERVICES, dependency
            else:
                assert rule["condition"] == "service_completed_successfully", (name, rule)
    # Services without an HTTP port must not run the image's HTTP health check.
    for name in ("worker", "remote-worker", "s3-bucket"):
        assert services[name]["healthcheck"] == {"disable": True}


def test_every_setting_it_names_is_one_voxhelm_reads() -> None:
    read = load_config({}).names_read
    services = compose_file()["services"]
    for name in VOXHELM_SERVICES:
        for variable in services[name].get("environment", {}):
            assert variable in read, f"{name}: {variable} is no Voxhelm setting"
            if variable.endswith("_FILE"):
                secret = services[name]["environment"][variable].removeprefix("/run/secrets/")
                assert secret in services[name]["secrets"], (name, variable)


def test_the_secrets_script_writes_every_secret_and_keeps_them(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    script = REPO / "deploy" / "make-secrets.sh"
    subprocess.run(["sh", str(script), str(secrets)], check=True, capture_output=True)
    declared = compose_file()["secrets"]
    for name, secret in declared.items():
        path = secrets / Path(secret["file"]).name
        assert path.read_text().strip(), name
        assert path.stat().st_mode & 0o777 == 0o644  # the containers' user reads it
    assert secrets.stat().st_mode & 0o777 == 0o700

    def read(name: str) -> str:
        return (secrets / name).read_text().strip()

    assert read("worker-tokens") == f"gpu1={read('worker-token')}"
    assert f":{read('db-password')}@postgres:5432/" in read("database-url")
    identity = json.loads(read("s3-identities.json"))["identities"][0]
    access_key = compose_file()["services"]["web"]["environment"][
        "VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID"
    ]
    assert identity["credentials"] == [
        {"accessKey": access_key, "secretKey": read("s3-secret-key")}
    ]
    assert {"Read", "Write", "List"} <= set(identity["actions"])
    env = {
        "VOXHELM_BEARER_TOKENS_FILE": str(secrets / "producer-tokens"),
        "VOXHELM_WORKER_TOKENS_FILE": str(secrets / "worker-tokens"),
        "DATABASE_URL_FILE": str(secrets / "database-url"),
    }
    config = load_config(env)
    assert not config.problems, config.problems
    assert config.auth.worker_tokens == {"gpu1": read("worker-token")}
    before = {path.name: path.read_text() for path in secrets.iterdir()}
    subprocess.run(["sh", str(script), str(secrets)], check=True, capture_output=True)
    assert {path.name: path.read_text() for path in secrets.iterdir()} == before


@pytest.mark.slow
def test_the_bucket_service_creates_the_bucket_once(tmp_path: Path) -> None:
    """The one-shot s3-bucket service's script, against a real S3 server (SeaweedFS, as in
    the compose file; the server's own test identity stands in for the generated one)."""
    service = compose_file()["services"]["s3-bucket"]
    assert service["entrypoint"] == ["python", "-c"]
    server = start_s3(tmp_path / "s3")
    try:
        secret = tmp_path / "secret"
        secret.write_text(f"{SECRET_KEY}\n")
        env = {
            **service["environment"],
            "VOXHELM_ARTIFACT_S3_ENDPOINT_URL": server.endpoint_url,
            "VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY_FILE": str(secret),
            "PATH": os.environ["PATH"],
        }
        for _ in range(2):  # a second start finds the bucket there
            ran = subprocess.run(
                [sys.executable, "-c", service["command"][0]],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stderr
            assert ran.stdout.strip() == "bucket voxhelm is ready"
        client: Any = server.client()
        assert "voxhelm" in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]
    finally:
        server.stop()


@pytest.mark.container
@pytest.mark.slow
def test_the_single_host_default_starts_and_transcribes(
    podman: Podman, image: str, figures: dict[str, Any]
) -> None:
    project = f"voxhelm-test-{uuid.uuid4().hex[:8]}"
    http_port = free_port()
    env = {
        **podman.env,
        "VOXHELM_IMAGE": image,
        "VOXHELM_HTTP_PORT": f"127.0.0.1:{http_port}",
        "VOXHELM_WYOMING_PORT": f"127.0.0.1:{free_port()}",
    }
    command = [*podman_compose(), "--project-name", project, "-f", str(COMPOSE)]
    started = time.monotonic()
    up = subprocess.run(
        [*command, "up", "--detach"], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        container = podman.text(
            "ps", "--filter", f"label=io.podman.compose.project={project}", "--format={{.Names}}"
        )
        assert container, up.stdout + up.stderr
        deadline = time.monotonic() + 180
        while podman.run("healthcheck", "run", container, check=False).returncode != 0:
            assert time.monotonic() < deadline, podman.run("logs", container).stdout.decode()
            time.sleep(0.5)
        token = podman.text("exec", container, "cat", "/var/lib/voxhelm/dev-token")
        # Healthy is alive; the default model may still be loading for a moment.
        while (
            httpx.get(
                f"http://127.0.0.1:{http_port}/v1/health",
                headers={"Authorization": f"Bearer {token}"},
            ).json()["stt"]["state"]
            != "ready"
        ):
            assert time.monotonic() < deadline, podman.run("logs", container).stdout.decode()
            time.sleep(0.5)
        speech = synthesize(SENTENCE)
        client = OpenAI(base_url=f"http://127.0.0.1:{http_port}/v1", api_key=token)
        text = client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", speech.wav_bytes())
        ).text
        figures["compose up to first transcription seconds"] = round(time.monotonic() - started, 1)
        assert word_error_rate(SENTENCE, text) <= 0.2, text
        volumes = podman.text("volume", "ls", "--format={{.Name}}").split()
        assert f"{project}_voxhelm-data" in volumes
    finally:
        subprocess.run(
            [*command, "down", "--volumes"], env=env, capture_output=True, timeout=120,
            check=False,
        )  # fmt: skip

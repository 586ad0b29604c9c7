"""deploy/home-assistant: the add-on's config against the add-on configuration schema (as
documented for add-on developers and enforced by the Supervisor), its options mapped to real
Voxhelm settings, and the add-on built and started for real from an assembled folder.

Two stand-ins, because neither can be had here: the Debian test base image for the add-on
base image (no image registry is reachable), and a small ``bashio`` that reads the options
file and records the discovery message (the Supervisor's API exists only inside Home
Assistant). Everything else is the add-on as the Supervisor builds and starts it.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from tests.conftest import free_port
from tests.deploy.podman import BASE_IMAGE, REPO, Podman, require
from tests.speech import synthesize, word_error_rate
from voxhelm.config import load_config

ADDON = REPO / "deploy" / "home-assistant"
ADDON_IMAGE = "localhost/voxhelm-addon:test"
ARCHES = {"armhf", "armv7", "aarch64", "amd64", "i386"}
# The add-on configuration keys of the developer documentation (and the Supervisor's schema).
KNOWN_KEYS = {
    "name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot",
    "init", "advanced", "stage", "ports", "ports_description", "watchdog", "webui", "ingress",
    "ingress_port", "ingress_entry", "ingress_stream", "panel_icon", "panel_title",
    "panel_admin", "homeassistant", "host_network", "host_pid", "host_ipc", "host_uts",
    "host_dbus", "devices", "udev", "tmpfs", "map", "environment", "privileged", "apparmor",
    "full_access", "audio", "video", "gpio", "usb", "uart", "devicetree", "kernel_modules",
    "realtime", "hassio_api", "hassio_role", "homeassistant_api", "stdin", "legacy",
    "docker_api", "auth_api", "services", "discovery", "backup_exclude", "backup_pre",
    "backup_post", "backup", "options", "schema", "image", "ulimits", "timeout", "journald",
    "breaking_versions",
}  # fmt: skip
REQUIRED_KEYS = {"name", "version", "slug", "description", "arch"}
# Option types: str, bool, int, float, email, url, password, port, device, each with an
# optional (min,max) where it makes sense, match(REGEX), list(a|b|c); "?" makes it optional.
SCHEMA_TYPE = re.compile(
    r"^(?:(?P<kind>str|int|float)(?:\((?P<low>-?[\d.]*),(?P<high>-?[\d.]*)\))?"
    r"|(?P<plain>bool|email|url|password|port|device)"
    r"|match\((?P<regex>.+)\)"
    r"|list\((?P<choices>[^|()]+(?:\|[^|()]+)*)\))(?P<optional>\?)?$"
)
SENTENCE = "Please turn on the kitchen lights and open the garden door."


def read_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def check_option(name: str, rule: str, value: Any) -> None:
    """Raise AssertionError when ``value`` does not fit the add-on schema ``rule``."""
    found = SCHEMA_TYPE.match(rule)
    assert found, f"{name}: {rule!r} is no add-on option type"
    if found["optional"] and value in ("", None):
        return
    if found["kind"] == "str" or found["plain"] in ("email", "url", "password", "device"):
        assert isinstance(value, str), (name, value)
    elif found["kind"] in ("int", "float") or found["plain"] == "port":
        numbers = int if found["kind"] != "float" else (int, float)
        assert isinstance(value, numbers) and not isinstance(value, bool), (name, value)
        low, high = (found["low"], found["high"]) if found["kind"] else ("1", "65535")
        assert low in (None, "") or value >= float(low), (name, value)
        assert high in (None, "") or value <= float(high), (name, value)
    elif found["plain"] == "bool":
        assert isinstance(value, bool), (name, value)
    elif found["regex"]:
        assert isinstance(value, str) and re.match(found["regex"], value), (name, value)
    else:
        assert value in found["choices"].split("|"), (name, value)


def test_the_config_fits_the_add_on_schema() -> None:
    config = read_yaml(ADDON / "config.yaml")
    assert set(config) >= REQUIRED_KEYS
    assert set(config) <= KNOWN_KEYS, set(config) - KNOWN_KEYS
    assert re.fullmatch(r"[a-z0-9_]+", config["slug"])
    assert set(config["arch"]) <= ARCHES
    assert config["init"] is False  # the base image's s6-overlay is PID 1
    assert config["discovery"] == ["wyoming"]
    for port, published in config["ports"].items():
        assert re.fullmatch(r"\d+/(tcp|udp)", port) and published is None, port
        assert port in config["ports_description"]
    assert set(config["options"]) == set(config["schema"])
    for name, rule in config["schema"].items():
        check_option(name, rule, config["options"][name])
    assert config["version"] == load_version()
    build = read_yaml(ADDON / "build.yaml")
    assert set(build["build_from"]) == set(config["arch"])
    for arch, base in build["build_from"].items():
        assert base == f"ghcr.io/home-assistant/{arch}-base-debian:bookworm"


def test_the_schema_check_refuses_what_the_supervisor_refuses() -> None:
    for name, rule, value in (
        ("model", "list(tiny.en|base)", "large"),
        ("beam_size", "int(1,20)", 0),
        ("language", "match(^(auto|[a-z]{2,3})$)", "en-US"),
        ("debug", "bool", "yes"),
        ("x", "string", "a"),
    ):
        with pytest.raises(AssertionError):
            check_option(name, rule, value)


def load_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert match is not None
    return match[1]


def test_every_option_is_translated_and_becomes_a_voxhelm_setting() -> None:
    config = read_yaml(ADDON / "config.yaml")
    for translation in sorted((ADDON / "translations").glob("*.yaml")):
        texts = read_yaml(translation)
        assert set(texts["configuration"]) == set(config["options"]), translation.name
        for option, text in texts["configuration"].items():
            assert text["name"] and text["description"], (translation.name, option)
        assert set(texts["network"]) == set(config["ports"]), translation.name
    run = (ADDON / "run.sh").read_text(encoding="utf-8")
    for option in config["options"]:
        assert f"'{option}'" in run, f"run.sh never reads {option}"
    read = load_config({}).names_read
    for variable in set(re.findall(r"\bVOXHELM_[A-Z_]+", run)):
        assert variable in read, f"run.sh sets {variable}, which Voxhelm does not read"
    docs = (ADDON / "DOCS.md").read_text(encoding="utf-8")
    for option in config["options"]:
        assert f"| `{option}` |" in docs, f"DOCS.md does not explain {option}"


def test_the_shell_scripts_pass_shellcheck() -> None:
    scripts = [
        ADDON / "run.sh",
        ADDON / "assemble.sh",
        REPO / "deploy" / "make-secrets.sh",
        Path(__file__).parent / "bashio-stub.sh",
    ]
    result = subprocess.run(
        [require("shellcheck"), *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "")


@pytest.mark.container
@pytest.mark.slow
def test_the_add_on_builds_starts_with_its_options_and_announces_itself(
    podman: Podman, names: Any, tmp_path: Path, figures: dict[str, Any]
) -> None:
    podman.ensure_base_image()
    folder = tmp_path / "addon"
    subprocess.run(["sh", str(ADDON / "assemble.sh"), str(folder)], check=True)
    seconds = podman.build(
        ADDON_IMAGE, "Dockerfile", ["--build-arg", f"BUILD_FROM={BASE_IMAGE}"], context=folder
    )
    figures["add-on build seconds, on the Debian test base"] = round(seconds, 1)

    with_contenv = tmp_path / "with-contenv"  # s6-overlay's: the container's environment
    with_contenv.write_text('#!/bin/sh\nexec "$@"\n')
    with_contenv.chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    options = read_yaml(ADDON / "config.yaml")["options"]
    options.update(model="base", language="en", prompt="Kitchen, garden.", debug_logging=True)
    (data / "options.json").write_text(json.dumps(options))

    name = names.container("addon")
    port = free_port()
    podman.run(
        "run", "--detach", "--name", name, "--hostname", "local-voxhelm",
        f"-p=127.0.0.1:{port}:10300",
        f"--volume={Path(__file__).parent / 'bashio-stub.sh'}:/usr/bin/bashio:ro",
        f"--volume={with_contenv}:/usr/bin/with-contenv:ro",
        f"--volume={data}:/data",
        ADDON_IMAGE,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while podman.run("healthcheck", "run", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, podman.run("logs", name).stdout.decode()
        time.sleep(0.5)

    speech = synthesize(SENTENCE)

    async def talk() -> tuple[Info, str]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info_event = await asyncio.wait_for(client.read_event(), timeout=30)
            assert info_event is not None
            await client.write_event(Transcribe(language="en").event())
            rate, audio = speech.sample_rate, speech.samples.tobytes()
            await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
            for offset in range(0, len(audio), 4096):
                chunk = audio[offset : offset + 4096]
                await client.write_event(
                    AudioChunk(rate=rate, width=2, channels=1, audio=chunk).event()
                )
            await client.write_event(AudioStop().event())
            while True:
                event = await asyncio.wait_for(client.read_event(), timeout=60)
                assert event is not None
                if Transcript.is_type(event.type):
                    return Info.from_event(info_event), Transcript.from_event(event).text

    info, text = asyncio.run(talk())
    models = [(model.name, model.languages) for program in info.asr for model in program.models]
    # A multilingual model advertises every language it speaks, the configured one first, so
    # Home Assistant offers them all (VOXHELM_WYOMING_STT_LANGUAGES in docs/configuration.md).
    assert [name for name, _ in models] == ["base"], models
    languages = models[0][1]
    assert languages[0] == "en" and len(languages) > 50 and "de" in languages, models
    assert word_error_rate(SENTENCE, text) <= 0.2, text
    discovery = json.loads((data / "discovery.json").read_text())
    assert discovery == {"service": "wyoming", "config": {"uri": "tcp://local-voxhelm:10300"}}
    logs = podman.run("logs", name).stdout.decode() + podman.run("logs", name).stderr.decode()
    assert "stt_debug" in logs and "Kitchen, garden." in logs
    assert (data / "models" / "whisper-base-ct2").is_dir()  # in the add-on's data folder

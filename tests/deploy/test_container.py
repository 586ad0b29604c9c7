"""The container image of ./Containerfile, built and run with podman: real speech through
the published ports (the official ``openai`` client, the ``wyoming`` client), state that
outlives the container in its volume, no network needed at run time, no root."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import pytest
from openai import OpenAI
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from tests.conftest import free_port
from tests.deploy.podman import Podman
from tests.speech import synthesize, word_error_rate

pytestmark = [pytest.mark.container, pytest.mark.slow]

SENTENCE = "Please turn on the kitchen lights and open the garden door."
STATE = "/var/lib/voxhelm"
HEALTHY_TIMEOUT = 180.0


def start(podman: Podman, image: str, name: str, *options: str) -> float:
    """``podman run -d``; returns the monotonic time just before the run."""
    started = time.monotonic()
    podman.run("run", "--detach", "--name", name, *options, image)
    return started


def wait_healthy(podman: Podman, name: str) -> None:
    """Run the image's HEALTHCHECK until it passes (podman starts no timer for it here: that
    needs systemd, which this machine does not run)."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT
    while time.monotonic() < deadline:
        if podman.run("healthcheck", "run", name, check=False).returncode == 0:
            return
        state = podman.inspect(name, "container")["State"]
        assert isinstance(state, dict)
        if not state.get("Running"):
            break
        time.sleep(0.5)
    logs = podman.run("logs", name, check=False)
    raise AssertionError(f"{name} did not turn healthy:\n{logs.stdout.decode()[-3000:]}")


def published() -> tuple[list[str], int, int]:
    """Free loopback ports for HTTP and Wyoming, and the ``-p`` options that publish them."""
    http_port, wyoming_port = free_port(), free_port()
    options = [f"-p=127.0.0.1:{http_port}:8000", f"-p=127.0.0.1:{wyoming_port}:10300"]
    return options, http_port, wyoming_port


def dev_token(podman: Podman, name: str) -> str:
    return podman.text("exec", name, "cat", f"{STATE}/dev-token")


def transcribe_over_wyoming(port: int, wav_samples: bytes, rate: int) -> str:
    async def run() -> str:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
            for offset in range(0, len(wav_samples), 4096):
                chunk = wav_samples[offset : offset + 4096]
                await client.write_event(
                    AudioChunk(rate=rate, width=2, channels=1, audio=chunk).event()
                )
            await client.write_event(AudioStop().event())
            while True:
                event = await asyncio.wait_for(client.read_event(), timeout=60)
                assert event is not None, "the server closed the connection"
                if Transcript.is_type(event.type):
                    return str(Transcript.from_event(event).text)

    return asyncio.run(run())


def test_the_image_is_lean_and_declares_how_it_runs(
    podman: Podman, image: str, figures: dict[str, Any]
) -> None:
    inspected: Any = podman.inspect(image)
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["voxhelm"]
    assert config["Cmd"] == ["serve", "--wyoming", "--host", "0.0.0.0"]
    assert set(config["ExposedPorts"]) == {"8000/tcp", "10300/tcp"}
    assert set(config["Volumes"]) == {STATE}
    assert inspected["Healthcheck"]["Test"] == ["CMD", "python", "/opt/voxhelm/healthcheck.py"]
    assert f"VOXHELM_VAR_DIR={STATE}" in config["Env"]
    # Nothing of the build: no uv, no pip cache, no compiler, no dev group, no build args.
    probe = podman.text(
        "run", "--rm", "--network=none", "--entrypoint=sh", image, "-c",
        "ls /opt /opt/voxhelm; command -v uv gcc cc make || true; "
        "python -c 'import importlib.util as u; print([m for m in (\"pytest\", \"ruff\", "
        "\"openai\", \"faster_whisper\", \"piper\") if u.find_spec(m)])'",
    )  # fmt: skip
    assert probe.splitlines() == [
        "/opt:",
        "voxhelm",
        "",
        "/opt/voxhelm:",
        "healthcheck.py",
        "venv",
        "['faster_whisper', 'piper']",
    ]
    history = podman.text("history", "--no-trunc", image)
    for leaked in ("SSL_CERT_FILE", "PIP_CERT", "UV_NATIVE_TLS", "ca-certificates.crt"):
        assert leaked not in history
    assert "SSL_CERT_FILE" not in str(config["Env"])


def test_it_transcribes_real_speech_at_once_and_its_state_outlives_the_container(
    podman: Podman, image: str, names: Any, figures: dict[str, Any]
) -> None:
    speech = synthesize(SENTENCE)
    volume = names.volume("state")
    first = names.container("first")
    ports, http_port, wyoming_port = published()
    started = start(podman, image, first, *ports, f"--volume={volume}:{STATE}")
    wait_healthy(podman, first)
    figures["cold start to healthy seconds"] = round(time.monotonic() - started, 1)
    token = dev_token(podman, first)

    client = OpenAI(base_url=f"http://127.0.0.1:{http_port}/v1", api_key=token, max_retries=0)
    text = client.audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", speech.wav_bytes())
    ).text
    figures["cold start to first transcription seconds"] = round(time.monotonic() - started, 1)
    assert word_error_rate(SENTENCE, text) <= 0.2, text

    heard = transcribe_over_wyoming(wyoming_port, speech.samples.tobytes(), speech.sample_rate)
    assert word_error_rate(SENTENCE, heard) <= 0.2, heard

    # Not root: every id of the server process is the image's user.
    status = podman.text("exec", first, "cat", "/proc/1/status")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["10001"] * 4, uid_line
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    figures["serve peak RSS MB after HTTP and Wyoming transcriptions"] = round(
        int(peak.split()[1]) / 1024
    )

    # A batch job, whose record and artifacts must survive the container.
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    upload = api.post("/v1/uploads", files={"file": ("speech.wav", speech.wav_bytes())})
    assert upload.status_code == 201, upload.text
    job = api.post(
        "/v1/jobs",
        json={
            "job_type": "transcribe",
            "input": {"kind": "upload", "upload_id": upload.json()["id"]},
            "output": {"formats": ["text", "vtt"]},
        },
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    deadline = time.monotonic() + 120
    while (done := api.get(f"/v1/jobs/{job_id}").json())["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, done
        time.sleep(0.5)
    assert done["state"] == "succeeded", done
    transcript = api.get(f"/v1/jobs/{job_id}/artifacts/transcript.txt").text
    assert word_error_rate(SENTENCE, transcript) <= 0.2, transcript

    # A new container on the same volume: same token, same job, same artifacts.
    podman.remove_container(first)
    second = names.container("second")
    ports, http_port, _ = published()
    start(podman, image, second, *ports, f"--volume={volume}:{STATE}")
    wait_healthy(podman, second)
    assert dev_token(podman, second) == token
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    again = api.get(f"/v1/jobs/{job_id}").json()
    assert again["state"] == "succeeded"
    assert again["result"]["artifacts"] == done["result"]["artifacts"]
    assert api.get(f"/v1/jobs/{job_id}/artifacts/transcript.txt").text == transcript
    assert "WEBVTT" in api.get(f"/v1/jobs/{job_id}/artifacts/transcript.vtt").text


def test_it_runs_without_any_network(podman: Podman, image: str, names: Any) -> None:
    """After the build nothing is fetched: the model and the voice are in the image."""
    speech = synthesize(SENTENCE)
    name = names.container("offline")
    start(podman, image, name, "--network=none", f"--volume={names.volume('offline')}:{STATE}")
    wait_healthy(podman, name)
    interfaces = podman.text("exec", name, "cat", "/proc/net/dev").splitlines()[2:]
    assert [line.split(":")[0].strip() for line in interfaces] == ["lo"]
    # No port can be published without a network: the client runs inside, on loopback.
    script = f"""
import base64, json, urllib.request, uuid
wav = base64.b64decode({base64.b64encode(speech.wav_bytes()).decode()!r})
token = open("{STATE}/dev-token").read().strip()
boundary = uuid.uuid4().hex
head = (f"--{{boundary}}\\r\\nContent-Disposition: form-data; name=\\"model\\"\\r\\n\\r\\n"
        f"whisper-1\\r\\n--{{boundary}}\\r\\nContent-Disposition: form-data; name=\\"file\\"; "
        f"filename=\\"speech.wav\\"\\r\\nContent-Type: audio/wav\\r\\n\\r\\n")
body = head.encode() + wav + f"\\r\\n--{{boundary}}--\\r\\n".encode()
request = urllib.request.Request(
    "http://127.0.0.1:8000/v1/audio/transcriptions", data=body,
    headers={{"Authorization": f"Bearer {{token}}",
             "Content-Type": f"multipart/form-data; boundary={{boundary}}"}})
print(json.load(urllib.request.urlopen(request, timeout=120))["text"])
"""
    text = podman.run("exec", "-i", name, "python", "-", stdin=script.encode()).stdout.decode()
    assert word_error_rate(SENTENCE, text) <= 0.2, text


def test_a_named_host_needs_voxhelm_allowed_hosts(podman: Podman, image: str, names: Any) -> None:
    """Clients that use the host's name get 400 until it is listed, as the docs say."""
    name = names.container("hosts")
    ports, http_port, _ = published()
    start(
        podman, image, name, *ports,
        "--env=VOXHELM_ALLOWED_HOSTS=voxhelm.lan,localhost",
        f"--volume={names.volume('hosts')}:{STATE}",
    )  # fmt: skip
    wait_healthy(podman, name)  # the health check sends a listed name
    token = dev_token(podman, name)
    url = f"http://127.0.0.1:{http_port}/v1/health"
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(url, headers={**headers, "Host": "voxhelm.lan"}).status_code == 200
    refused = httpx.get(url, headers={**headers, "Host": "other.lan"})
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"

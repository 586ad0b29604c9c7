"""WhisperKit engine: a client for a local OpenAI-compatible server (``whisperkit-cli serve``).

The server is a sidecar the operator runs (usually on loopback), and its URL is operator
configuration, so requests go straight to it with ``http.client`` rather than through the
guarded fetcher that exists for URLs users send. No proxy variables, no redirects.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from voxhelm import __version__
from voxhelm.audio import Audio, wav_bytes
from voxhelm.config import WhisperKitConfig
from voxhelm.stt.base import (
    Backend,
    BackendUnavailable,
    TranscriptionFailed,
    TranscriptionRequest,
)
from voxhelm.stt.mlx import transcript_from_payload
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.stt")

DISABLED = "WhisperKit is disabled. Set VOXHELM_WHISPERKIT_ENABLED=true to use it."
CHUNK_BYTES = 64 * 1024
# Connecting to a loopback sidecar is instant or refused; the long request timeout
# (VOXHELM_WHISPERKIT_TIMEOUT_SECONDS) is for inference, not for a host that never answers.
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
LOGGED_BODY_CHARS = 2000


@dataclass(frozen=True)
class Endpoint:
    """Where transcriptions are posted, split for ``http.client``."""

    https: bool
    host: str
    port: int | None
    target: str  # path and query of <base>/audio/transcriptions
    display: str  # the base URL without credentials, for messages


def endpoint(base_url: str) -> Endpoint:
    """Parse ``VOXHELM_WHISPERKIT_BASE_URL``; raises BackendUnavailable unless absolute http(s)."""
    parts = urlsplit(base_url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise BackendUnavailable(
            "VOXHELM_WHISPERKIT_BASE_URL must be an absolute http(s) URL, "
            "for example http://127.0.0.1:50060/v1."
        )
    target = parts.path.rstrip("/") + "/audio/transcriptions"
    if parts.query:
        target += f"?{parts.query}"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return Endpoint(
        https=parts.scheme == "https",
        host=parts.hostname,
        port=port,
        target=target,
        display=f"{parts.scheme}://{netloc}{parts.path}",
    )


def _field(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def multipart_fields(model: str, request: TranscriptionRequest) -> list[tuple[str, str]]:
    """The form fields before ``file``, in the order the reference sends them."""
    fields = [
        ("model", model),
        ("response_format", "verbose_json"),
        ("timestamp_granularities[]", "segment"),
    ]
    if request.language:
        fields.append(("language", request.language))
    if request.prompt:
        fields.append(("prompt", request.prompt))
    if request.temperature is not None:
        fields.append(("temperature", repr(request.temperature)))
    return fields


class WhisperKitBackend(Backend):
    name = "whisperkit"

    def __init__(self, config: WhisperKitConfig, api_key: str = "") -> None:
        super().__init__(config.model)
        self.config = config
        self._api_key = api_key  # sent as a bearer token when the server wants one

    def check(self) -> list[str]:
        if not self.config.enabled:
            return [DISABLED]
        try:
            endpoint(self.config.base_url)
        except BackendUnavailable as exc:
            return [str(exc)]
        return []

    def transcribe(self, audio: Audio, request: TranscriptionRequest) -> Transcript:
        if not self.config.enabled:
            raise BackendUnavailable(DISABLED)
        if request.task != "transcribe":
            raise TranscriptionFailed("The WhisperKit backend does not translate.")
        target = endpoint(self.config.base_url)
        boundary = f"voxhelm-{secrets.token_hex(16)}"
        head = b"".join(_field(boundary, k, v) for k, v in multipart_fields(self.model, request))
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="audio.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        wav = wav_bytes(audio)
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + len(wav) + len(tail)),
            "Accept": "application/json",
            "User-Agent": f"voxhelm/{__version__}",
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        status, body = self._post(target, headers, _chunks(head, wav, tail))
        if status >= 400:
            logger.warning(
                "whisperkit answered HTTP %s: %s",
                status,
                body[:LOGGED_BODY_CHARS].decode("utf-8", errors="replace"),
            )
            raise TranscriptionFailed(f"WhisperKit transcription failed with HTTP {status}.")
        payload = _json_object(body)
        return transcript_from_payload(
            payload, duration=audio.duration, backend=self.name, model=self.model
        )

    def _post(
        self, target: Endpoint, headers: dict[str, str], body: Iterator[bytes]
    ) -> tuple[int, bytes]:
        connection_class = (
            http.client.HTTPSConnection if target.https else http.client.HTTPConnection
        )
        connection = connection_class(target.host, target.port, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            try:
                connection.connect()
            except OSError as exc:
                raise BackendUnavailable(
                    f"WhisperKit server '{target.display}' is not reachable. "
                    "Check the sidecar process and URL config."
                ) from exc
            assert connection.sock is not None
            connection.sock.settimeout(self.config.timeout_seconds)
            try:
                connection.request("POST", target.target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read(MAX_RESPONSE_BYTES + 1)
            except (OSError, http.client.HTTPException) as exc:
                # The server took the request and then failed or stalled: not "unavailable",
                # so no fallback engine runs the same audio again.
                raise TranscriptionFailed(
                    f"WhisperKit request to '{target.display}' failed: {exc!r}"
                ) from exc
        finally:
            connection.close()
        if len(data) > MAX_RESPONSE_BYTES:
            raise TranscriptionFailed("WhisperKit answered with an oversized body.")
        return response.status, data


def _chunks(head: bytes, wav: bytes, tail: bytes) -> Iterator[bytes]:
    yield head
    view = memoryview(wav)
    for offset in range(0, len(view), CHUNK_BYTES):
        yield bytes(view[offset : offset + CHUNK_BYTES])
    yield tail


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        logger.warning(
            "whisperkit answered with invalid JSON: %s",
            body[:LOGGED_BODY_CHARS].decode("utf-8", errors="replace"),
        )
        raise TranscriptionFailed("WhisperKit answered with a body that is not JSON.") from exc
    if not isinstance(payload, dict):
        raise TranscriptionFailed("WhisperKit answered with JSON that is not an object.")
    return payload

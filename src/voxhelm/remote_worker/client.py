"""The worker's HTTP client for the ``/v1/internal/`` protocol (standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, TypeVar

from pydantic import BaseModel

from voxhelm import __version__, boundedjson
from voxhelm.errors import InvalidJson

M = TypeVar("M", bound=BaseModel)

USER_AGENT = f"voxhelm-remote-worker/{__version__}"
MAX_ERROR_BODY = 500


class ApiFailure(Exception):
    """The server answered with a non-2xx status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:MAX_ERROR_BODY]}")
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        """The error envelope's message, or the raw body."""
        try:
            return str(boundedjson.decode(self.body)["error"]["message"])
        except (ValueError, KeyError, TypeError):  # InvalidJson is a ValueError
            return self.body[:MAX_ERROR_BODY]


class Unreachable(Exception):
    """The server could not be reached (connection refused, timeout, DNS)."""


class WorkerClient:
    """POSTs protocol models as JSON with the worker's bearer token."""

    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the token
        return f"WorkerClient({self.base_url!r})"

    def post(self, path: str, body: BaseModel, answer: type[M]) -> M | None:
        """POST ``body``; the answer parsed as ``answer``, or None for 204 No Content."""
        data = self.post_raw(path, body.model_dump(mode="json", exclude_none=True))
        return None if data is None else answer.model_validate(data)

    def post_raw(self, path: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        request = urllib.request.Request(  # noqa: S310 - the configured server's http(s) URL
            f"{self.base_url}{path}",
            data=json.dumps(payload).encode("utf-8"),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
                if response.status == 204 or not raw:
                    return None
                data = boundedjson.decode(raw, subject="The server's answer")
        except InvalidJson as exc:
            raise ApiFailure(200, exc.message) from None
        except urllib.error.HTTPError as exc:
            raise ApiFailure(exc.code, exc.read().decode("utf-8", "replace")) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise Unreachable(f"{self.base_url}: {exc}") from None
        if not isinstance(data, dict):
            raise ApiFailure(200, "the answer was not a JSON object")
        return data

"""Container health check: exit 0 while ``GET /v1/health/live`` answers ``ok``.

Runs inside the container (``HEALTHCHECK`` of the Containerfile, ``healthcheck`` of
deploy/compose.yaml). The liveness answer needs no token, so the check reads no secret; it
says ``degraded`` (503) when the default speech-to-text engine cannot load, e.g. the CUDA
image on a machine without a GPU.
"""

from __future__ import annotations

import http.client
import json
import os
import sys

from voxhelm.config import Config, load_config

TIMEOUT_SECONDS = 5.0
PATH = "/v1/health/live"


def pick_host_header(config: Config) -> str:
    """A name the app answers to: the first of ``VOXHELM_ALLOWED_HOSTS`` (Django refuses a
    request whose Host header is not listed, even on loopback)."""
    host = config.http.allowed_hosts[0] if config.http.allowed_hosts else "localhost"
    return "localhost" if host == "*" else host.lstrip(".")


def check_health(port: int) -> str:
    """``""`` when healthy, else what is wrong."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", PATH, headers={"Host": pick_host_header(load_config())})
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        return f"no answer on port {port}: {exc}"
    finally:
        connection.close()
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        status = None
    if response.status != 200 or status != "ok":
        return f"{PATH} answered {response.status} {status or body[:100]!r}"
    return ""


def main() -> None:
    problem = check_health(int(os.environ.get("VOXHELM_HEALTHCHECK_PORT", "8000")))
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(1)
    print("healthy")


if __name__ == "__main__":
    main()

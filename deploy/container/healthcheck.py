"""Container health check: exit 0 once ``GET /v1/health`` says the default model is ready.

Runs inside the container (``HEALTHCHECK`` of the Containerfile, ``healthcheck`` of
deploy/compose.yaml) with the container's environment, so it authenticates the way the
server does: with a configured producer or worker token, else the generated dev token.
"""

from __future__ import annotations

import http.client
import json
import os
import sys

from voxhelm.config import Config, load_config

TIMEOUT_SECONDS = 5.0


def pick_token(config: Config) -> str:
    """Any token ``/v1/health`` accepts; the dev token of ``voxhelm serve`` when none is set."""
    for tokens in (config.auth.bearer_tokens, config.auth.worker_tokens):
        for token in tokens.values():
            return token
    try:
        return (config.paths.var_dir / "dev-token").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def pick_host_header(config: Config) -> str:
    """A name the app answers to: the first of ``VOXHELM_ALLOWED_HOSTS`` (Django refuses a
    request whose Host header is not listed, even on loopback)."""
    host = config.http.allowed_hosts[0] if config.http.allowed_hosts else "localhost"
    return "localhost" if host == "*" else host.lstrip(".")


def check_health(port: int) -> str:
    """``""`` when healthy, else what is wrong."""
    config = load_config()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request(
            "GET",
            "/v1/health",
            headers={
                "Host": pick_host_header(config),
                "Authorization": f"Bearer {pick_token(config)}",
            },
        )
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        return f"no answer on port {port}: {exc}"
    finally:
        connection.close()
    if response.status != 200:
        return f"/v1/health answered {response.status}"
    health = json.loads(body)
    if health.get("status") != "ok" or health.get("stt", {}).get("state") != "ready":
        return f"not ready: {json.dumps(health.get('stt'))}"
    return ""


def main() -> None:
    problem = check_health(int(os.environ.get("VOXHELM_HEALTHCHECK_PORT", "8000")))
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(1)
    print("healthy")


if __name__ == "__main__":
    main()

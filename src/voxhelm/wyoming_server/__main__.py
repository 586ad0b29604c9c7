"""``voxhelm-wyoming-stt``: the Wyoming speech-to-text server for Home Assistant.

It needs no Django and no database: it reads the ``VOXHELM_*`` settings, loads the
configured model and serves Wyoming on ``--uri`` (default
``tcp://$VOXHELM_WYOMING_STT_HOST:$VOXHELM_WYOMING_STT_PORT``). ``voxhelm serve --wyoming``
runs the same server on a thread of the web process instead, sharing its loaded model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from voxhelm import __version__
from voxhelm.config import Config, ConfigError, load_config
from voxhelm.helptext import ParagraphFormatter, plain
from voxhelm.modelstore.startup import let_engines_pull
from voxhelm.workdirs import sweep
from voxhelm.wyoming_server.handler import SttService
from voxhelm.wyoming_server.info import SttSettings, resolve_settings
from voxhelm.wyoming_server.server import Endpoint, WyomingServer, parse_uri

logger = logging.getLogger("voxhelm.wyoming")


def default_uri(config: Config) -> str:
    return str(Endpoint("tcp", host=config.wyoming.host, port=config.wyoming.port))


def build_service(config: Config) -> SttService:
    """The shared service for ``config``; raises ConfigError for invalid settings."""
    config.raise_for_problems()
    settings = resolve_settings(config)
    from voxhelm.stt.registry import ENGINES, resolve

    # The interactive default stays loaded even with VOXHELM_MODEL_IDLE_SECONDS set.
    for invocation in resolve(settings.model, config.stt):
        ENGINES.pin(invocation)
    return SttService(config, settings)


def warm_up(config: Config, settings: SttSettings) -> None:
    """Load the model, the VAD and the default voice now, in the background, so the first
    command and the first answer are fast."""
    from voxhelm import tts
    from voxhelm.stt import vad
    from voxhelm.stt.base import BackendUnavailable
    from voxhelm.stt.registry import ENGINES, resolve

    def load() -> None:
        if config.wyoming.vad:
            vad.warm_up()
        # An unavailable engine answers each request with an error event, and logs why.
        with contextlib.suppress(BackendUnavailable):
            ENGINES.get(resolve(settings.model, config.stt)[0], config.stt).load()
        voice = tts.catalog(config.tts).default
        if voice is not None:
            with contextlib.suppress(tts.VoiceUnavailable):
                tts.engine(config.tts).load(voice)

    threading.Thread(target=load, name="voxhelm-wyoming-warm-up", daemon=True).start()


def log_ready(settings: SttSettings) -> Callable[[str], None]:
    def ready(where: str) -> None:
        logger.info(
            "voxhelm wyoming listening on %s: backend=%s model=%s language=%s languages=%s",
            where,
            settings.backend,
            settings.model,
            settings.language or "auto",
            ",".join(settings.languages),
        )

    return ready


def start_in_thread(config: Config, uri: str | None = None) -> threading.Thread:
    """Run the server on a daemon thread with its own event loop (``voxhelm serve --wyoming``).

    The thread shares this process's ``ENGINES``, so a model loaded for HTTP serves Wyoming
    too. Raises ConfigError or ValueError (a bad URI) before the thread starts.
    """
    service = build_service(config)
    uri = uri or default_uri(config)
    parse_uri(uri)

    def run() -> None:
        try:
            asyncio.run(WyomingServer(service).serve(uri, log_ready(service.settings)))
        except Exception:
            logger.exception("the Wyoming server stopped")

    thread = threading.Thread(target=run, name="voxhelm-wyoming", daemon=True)
    thread.start()
    return thread


async def _serve_until_signalled(server: WyomingServer, uri: str, settings: SttSettings) -> None:
    task = asyncio.ensure_future(server.serve(uri, log_ready(settings)))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxhelm-wyoming-stt", description=plain(__doc__), formatter_class=ParagraphFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--uri",
        help="tcp://HOST:PORT, unix://PATH or stdio:// "
        "(default: tcp://$VOXHELM_WYOMING_STT_HOST:$VOXHELM_WYOMING_STT_PORT)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    # CTranslate2's OpenMP threads spin while they wait for each other. When another
    # process holds a core (a batch worker, the web app), a spinning team can take seconds
    # per command instead of a fraction of one: measured 10-18 s instead of 0.6 s for a 3 s
    # command on 2 busy cores. Passive waiting keeps a voice command's latency stable.
    # It must be set before the OpenMP runtime loads, i.e. before the model does.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    config = load_config()
    # stdout carries the protocol under stdio://, so logs always go to stderr.
    from voxhelm.logformat import formatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(config.http.log_format))
    logging.basicConfig(level=config.http.log_level.upper(), handlers=[handler])
    sweep(when="at start")  # whisper.cpp's WAVs of a killed process
    let_engines_pull(config)
    try:
        service = build_service(config)
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
        print("voxhelm-wyoming-stt: refusing to start.", *problems, sep="\n  ", file=sys.stderr)
        raise SystemExit(1) from None
    uri = args.uri or default_uri(config)
    try:
        parse_uri(uri)
    except ValueError as exc:
        print(f"voxhelm-wyoming-stt: bad --uri {uri!r}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    warm_up(config, service.settings)
    asyncio.run(_serve_until_signalled(WyomingServer(service), uri, service.settings))


if __name__ == "__main__":  # pragma: no cover
    main()

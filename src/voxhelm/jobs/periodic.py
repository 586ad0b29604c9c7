"""Housekeeping threads of worker and web processes: run a task now and then, for ever.

Each run gets fresh database connections (a long-lived thread must not keep a connection
the server closed) and a failure is logged, never fatal: the next run tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

logger = logging.getLogger("voxhelm.jobs")


def start_periodic(
    name: str,
    seconds: float,
    work: Callable[[], object],
    stop: threading.Event | None = None,
    *,
    wait_first: bool = False,
) -> threading.Thread:
    """Run ``work`` every ``seconds`` in a daemon thread called ``name`` until ``stop``."""
    stop = stop or threading.Event()

    def loop() -> None:
        if wait_first and stop.wait(seconds):
            return
        while True:
            close_old_connections()
            try:
                work()
            except Exception:
                logger.exception("%s: run failed", name)
            finally:
                close_old_connections()
            if stop.wait(seconds):
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread

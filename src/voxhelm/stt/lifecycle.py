"""Model lifecycle: idle models are unloaded and their memory is given back to the system.

Models load lazily on first use and stay warm (:class:`~voxhelm.stt.registry.Engines`).
With ``VOXHELM_MODEL_IDLE_SECONDS`` above 0, a daemon thread per process looks every few
seconds for models unused that long and unloads them — never the default model of the
aliases (``auto``, ``whisper-1``...) nor a pinned one (the Wyoming default), so a voice
command or an ordinary request never waits for a load.

Dropping the last reference frees CTranslate2's weights, but glibc keeps freed heap pages
in its arenas, so the process would not shrink: :func:`release_memory` collects garbage and
asks glibc to return free pages (``malloc_trim``). Measured on the multilingual ``base``
model (bench/model_unload.py): resident memory 216 MB loaded, 96 MB after unloading, of
which 68 MB before the first load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxhelm.stt.registry import Engines

logger = logging.getLogger("voxhelm.stt")

MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 30.0

_started: set[int] = set()
_started_lock = threading.Lock()


M_ARENA_MAX = -8  # glibc's mallopt parameter
MAX_ARENAS = 2


@functools.cache
def _libc_function(name: str, *argtypes: Any) -> Any:
    """A glibc function taking ``argtypes`` and returning an int, or None on other C
    libraries (musl, macOS)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        libc = ctypes.CDLL(library)
    except OSError:
        return None
    function = getattr(libc, name, None)
    if function is not None:
        function.argtypes = list(argtypes)
        function.restype = ctypes.c_int
    return function


@functools.cache
def limit_arenas() -> None:
    """Cap glibc's malloc arenas before the engine starts its threads.

    Every thread that allocates under contention gets an arena of its own (up to 8 per
    core), and an arena never goes away: with several engine workers, each load and unload
    left a little more memory behind in arenas ``malloc_trim`` cannot empty (measured with
    three workers on ``base``: 148 MB kept after two cycles; with two arenas 70 MB).
    """
    mallopt = _libc_function("mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, MAX_ARENAS)


def release_memory() -> None:
    """Collect garbage and give free heap pages back to the operating system (glibc)."""
    gc.collect()
    trim = _libc_function("malloc_trim", ctypes.c_size_t)
    if trim is not None:
        trim(0)


def sweep_interval(idle_seconds: float) -> float:
    """How often to look for idle models: a quarter of the idle time, within bounds."""
    return min(max(idle_seconds / 4, MIN_INTERVAL_SECONDS), MAX_INTERVAL_SECONDS)


def sweep(engines: Engines, idle_seconds: float) -> int:
    """Unload the models idle for ``idle_seconds`` now; returns how many were unloaded."""
    unloaded = engines.unload_idle(idle_seconds)
    if unloaded:
        release_memory()
        for backend in unloaded:
            logger.info(
                "unloaded idle STT model %s (%s) after %.0fs unused",
                backend.model,
                backend.name,
                idle_seconds,
            )
    return len(unloaded)


def start_idle_sweeper(engines: Engines) -> None:
    """Start (once per registry) the daemon thread that unloads idle models.

    The thread reads ``VOXHELM_MODEL_IDLE_SECONDS`` from the configuration the registry saw
    last, so a changed setting (tests swap configurations) takes effect at the next look.
    """
    with _started_lock:
        if id(engines) in _started:
            return
        _started.add(id(engines))

    def run() -> None:
        while True:
            config = engines.current_config()
            idle = config.model_idle_seconds if config is not None else 0.0
            if idle > 0:
                try:
                    sweep(engines, idle)
                except Exception:  # the sweeper must outlive any one failure
                    logger.exception("idle model sweep failed")
            time.sleep(sweep_interval(idle or MAX_INTERVAL_SECONDS))

    threading.Thread(target=run, name="voxhelm-model-sweeper", daemon=True).start()

"""Pulls the server makes itself: a missing default model at start, and a model a request
names when ``VOXHELM_MODEL_AUTO_PULL`` is on. Both report progress as log lines.

The engines never import the store: a process that transcribes hands them the request-time
pull at start (:func:`let_engines_pull`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from voxhelm.config import Config
from voxhelm.errors import InvalidInput
from voxhelm.modelcache import catalogue
from voxhelm.modelcache.catalogue import Kind
from voxhelm.modelstore.inventory import Store
from voxhelm.modelstore.listing import store_for
from voxhelm.modelstore.progress import LineProgress, TerminalProgress
from voxhelm.modelstore.pull import Progress, PullFailed, pull
from voxhelm.stt.base import BackendUnavailable
from voxhelm.stt.faster_whisper import is_installed, is_path
from voxhelm.stt.registry import ENGINES, Engines, resolve

logger = logging.getLogger("voxhelm.models")


def pull_for_engine(name: str, cache_dir: Path, *, token: str | None = None) -> Path:
    """Pull ``name`` for an engine that is about to load it; returns the model's path.

    ``token``: the Hub token, the same one every other pull sends (a gated or private
    repository must not work from the CLI and fail from a request). Raises
    BackendUnavailable when the pull fails (the request then answers 503).
    """
    try:
        known = catalogue.resolve(name)
    except InvalidInput as exc:
        raise BackendUnavailable(exc.message) from exc
    logger.info("model %s is not installed; pulling it (VOXHELM_MODEL_AUTO_PULL)", name)
    try:
        installed = pull(known, Store(cache_dir, cache_dir / "piper"), LineProgress(), token=token)
    except PullFailed as exc:
        raise BackendUnavailable(f"Pulling {name} failed: {exc}") from exc
    return installed.path


def let_engines_pull(config: Config, engines: Engines = ENGINES) -> None:
    """Let ``engines`` pull a model a request names (they do only while
    ``VOXHELM_MODEL_AUTO_PULL`` is on): every process that transcribes calls this at start."""
    token = hub_token(config)

    def puller(name: str, cache_dir: Path) -> Path:
        return pull_for_engine(name, cache_dir, token=token)

    engines.pull_with(puller)


def hub_token(config: Config) -> str | None:
    """The Hub token every pull sends (CLI, console, start-up and request-time pulls)."""
    return config.diarization.huggingface_token or None


def missing_default(config: Config) -> catalogue.Known | None:
    """The model the aliases resolve to, when it is a pullable model that is not installed."""
    invocation = resolve("auto", config.stt)[0]
    stt = config.stt
    if invocation.backend == "fasterwhisper":
        name = stt.fasterwhisper.model
        if not name or is_path(name) or is_installed(name, stt.model_cache_dir):
            return None
    elif invocation.backend == "whispercpp":
        name = stt.whispercpp.model
        if "/" in name or (stt.model_cache_dir / name).is_file():
            return None
    else:
        return None
    try:
        known = catalogue.resolve(name)
    except InvalidInput:
        return None  # not a name the store knows: the engine's check reports it
    return known if known.kind != Kind.PIPER else None


def pull_missing_default(config: Config) -> None:
    """``voxhelm serve``: pull the default model before the server says it is ready.

    Raises PullFailed: a server whose default model cannot be had should not pretend.
    """
    known = missing_default(config)
    if known is None:
        return
    logger.info("the default model %s is not installed; pulling it now", known.name)
    progress: Progress = TerminalProgress() if sys.stderr.isatty() else LineProgress()
    pull(known, store_for(config), progress, token=hub_token(config))

"""The console's Models page: installed models with size and last use, pulls with a live
progress bar, removal, and the default model of the console's new jobs
(:mod:`voxhelm.console.default_model`).

A pull runs on a thread of the web process (progress goes to the page and, as plain lines,
to the log); the page polls ``/models/pulls`` while one runs.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from voxhelm.config import Config
from voxhelm.console.default_model import choose_default_model, default_model
from voxhelm.console.views import operator_view
from voxhelm.errors import InvalidInput
from voxhelm.modelcache import catalogue
from voxhelm.modelstore.listing import Entry, entries, store_for
from voxhelm.modelstore.progress import LineProgress, PullState, RecordProgress, megabytes
from voxhelm.modelstore.pull import PullFailed, pull
from voxhelm.stt.registry import ALIASES, accepted_models

logger = logging.getLogger("voxhelm.models")

SHOWN_SECONDS = 600.0  # a finished pull stays on the page this long

_pulls: dict[str, PullState] = {}
_pulls_lock = threading.Lock()


class Both:
    """Progress for the page and for the log at once."""

    def __init__(self, *targets: Any) -> None:
        self.targets = targets

    def start(self, name: str, total: int, done: int) -> None:
        for target in self.targets:
            target.start(name, total, done)

    def advance(self, count: int) -> None:
        for target in self.targets:
            target.advance(count)

    def finish(self, ok: bool) -> None:
        for target in self.targets:
            target.finish(ok)


def start_pull(known: catalogue.Known, config: Config) -> PullState:
    """Pull ``known`` on a thread unless it is being pulled already; returns its state."""
    with _pulls_lock:
        running = _pulls.get(known.name)
        if running is not None and running.state in ("starting", "downloading"):
            return running
        state = _pulls[known.name] = PullState(known.name)

    def run() -> None:
        try:
            pull(
                known,
                store_for(config),
                Both(RecordProgress(state), LineProgress()),
                token=config.diarization.huggingface_token or None,
            )
        except PullFailed as exc:
            with RecordProgress.lock:
                state.state, state.error = "failed", str(exc)
        except Exception:
            logger.exception("console pull of %s failed", known.name)
            with RecordProgress.lock:
                state.state, state.error = "failed", "The pull failed; see the server log."

    threading.Thread(target=run, name=f"voxhelm-pull-{known.name}", daemon=True).start()
    return state


def current_pulls() -> list[PullState]:
    cutoff = time.time() - SHOWN_SECONDS
    with _pulls_lock, RecordProgress.lock:
        return [
            PullState(p.name, p.total, p.done, p.state, p.error, p.started)
            for p in _pulls.values()
            if p.state in ("starting", "downloading") or p.started >= cutoff
        ]


@dataclass(frozen=True)
class Row:
    entry: Entry
    size: str
    languages: str
    last_used: str
    status: str


def _row(entry: Entry) -> Row:
    installed = entry.installed
    assert installed is not None
    languages = entry.languages
    stamp = installed.last_used
    return Row(
        entry=entry,
        size=megabytes(installed.size_bytes),
        languages=", ".join(languages) if len(languages) <= 3 else f"{len(languages)} languages",
        last_used=(
            datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
            if stamp
            else "—"
        ),
        status="Ready" if entry.serves else str(entry.reason),
    )


def _context(config: Config) -> dict[str, Any]:
    rows = [_row(e) for e in entries(config, include_all=True) if e.installed is not None]
    serving = {row.entry.name for row in rows if row.entry.serves}
    pulls = current_pulls()
    return {
        "rows": rows,
        "pulls": pulls,
        "live": any(p.state in ("starting", "downloading") for p in pulls),
        "known": sorted(catalogue.KNOWN),
        "defaults": [
            name for name in accepted_models(config.stt) if name in ALIASES or name in serving
        ],
        "default": default_model(config),
    }


@operator_view(["GET"])
def models_page(request: HttpRequest) -> HttpResponse:
    return render(request, "console/models.html", _context(settings.VOXHELM))


@operator_view(["GET"])
def pull_list(request: HttpRequest) -> HttpResponse:
    """The pulls alone, which the Models page polls while one runs."""
    return render(request, "console/_pulls.html", _context(settings.VOXHELM))


@operator_view(["POST"])
def pull_model(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    try:
        known = catalogue.resolve(name)
    except InvalidInput as exc:
        messages.error(request, exc.message)
    else:
        start_pull(known, settings.VOXHELM)
        messages.info(request, f"Pulling {known.name}: its progress shows below.")
    return HttpResponseRedirect(reverse("console:models"))


@operator_view(["POST"])
def remove_model(request: HttpRequest) -> HttpResponse:
    store = store_for(settings.VOXHELM)
    installed = store.find(request.POST.get("name", ""))
    if installed is None:
        messages.error(request, "That model is not installed.")
    elif not installed.removable:
        messages.error(request, f"{installed.name} is {installed.source} and cannot be removed.")
    else:
        store.remove(installed)
        messages.info(request, f"Removed {installed.name} ({megabytes(installed.size_bytes)}).")
    return HttpResponseRedirect(reverse("console:models"))


@operator_view(["POST"])
def choose_default(request: HttpRequest) -> HttpResponse:
    config: Config = settings.VOXHELM
    name = request.POST.get("model", "").strip()
    try:
        choose_default_model(name, config)
    except InvalidInput as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"New jobs from the console now use {name}.")
    return HttpResponseRedirect(reverse("console:models"))

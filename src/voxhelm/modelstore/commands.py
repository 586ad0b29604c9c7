"""``voxhelm models list | info | pull | rm``: the model store from the command line (no Django)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any, NoReturn

from voxhelm.config import Config, load_config
from voxhelm.errors import InvalidInput
from voxhelm.helptext import add_command
from voxhelm.modelcache import catalogue
from voxhelm.modelstore.listing import Entry, entries, store_for
from voxhelm.modelstore.progress import LineProgress, TerminalProgress, megabytes
from voxhelm.modelstore.pull import Progress, PullFailed, pull


def register(models: Any) -> None:
    """Add the subcommands to the subparsers of voxhelm models."""
    listing = add_command(models, "list", command_list, "installed models (--all: known ones too)")
    listing.add_argument("--all", action="store_true", help="also models not installed")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    info = add_command(
        models, "info", command_info, "what one model is, where it is, what it weighs"
    )
    info.add_argument("name", help="a model's or voice's name, as voxhelm models list shows it")
    pulling = add_command(
        models,
        "pull",
        command_pull,
        "download a model: a faster-whisper name (small, large-v3, ...) or Hub "
        "repository id, a Piper voice name, or a whisper.cpp ggml-*.bin",
    )
    pulling.add_argument(
        "name", help="small, large-v3, a Hub repository id, de_DE-thorsten-medium, ggml-small.bin"
    )
    remove = add_command(models, "rm", command_rm, "remove a pulled model")
    remove.add_argument("name", help="a pulled model's name (bundled and packaged ones stay)")


def _config() -> Config:
    config = load_config()
    config.raise_for_problems()
    return config


def _fail(message: str) -> NoReturn:
    print(f"voxhelm: {message}", file=sys.stderr)
    raise SystemExit(1)


def _row(entry: Entry) -> dict[str, Any]:
    installed = entry.installed
    return {
        "name": entry.name,
        "kind": entry.kind.value,
        "engine": entry.engine,
        "installed": installed is not None,
        "source": installed.source if installed else None,
        "size_bytes": entry.size_bytes,
        "languages": list(entry.languages),
        "path": str(installed.path) if installed else None,
        "serves": entry.serves,
        "reason": entry.reason,
    }


def _languages(entry: Entry) -> str:
    if len(entry.languages) > 3:
        return f"{len(entry.languages)} languages"
    return ",".join(entry.languages) or "?"


def command_list(args: argparse.Namespace) -> None:
    """List the installed models and Piper voices with their size, source (bundled,
    packaged, pulled), languages and whether they can serve here. Needs no network."""
    rows = entries(_config(), include_all=args.all)
    if args.json:
        print(json.dumps([_row(entry) for entry in rows], indent=2))
        return
    table = [("NAME", "KIND", "SIZE", "SOURCE", "LANGUAGES", "STATUS")]
    for entry in rows:
        size = megabytes(entry.size_bytes) if entry.size_bytes else "?"
        if entry.installed is None:
            size = f"~{size}"
        source = entry.installed.source if entry.installed else "-"
        status = "ready" if entry.serves else str(entry.reason)
        table.append((entry.name, entry.kind.value, size, source, _languages(entry), status))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), end=""
        )
        print(f"  {row[-1]}")


def command_info(args: argparse.Namespace) -> None:
    """Show one model: its repository, commit, path, size, languages and last use."""
    config = _config()
    found = next((e for e in entries(config, include_all=True) if e.name == args.name), None)
    if found is None:
        try:
            known = catalogue.resolve(args.name)
        except InvalidInput as exc:
            _fail(exc.message)
        found = Entry.missing(known)
    row = _row(found)
    if found.known is not None:
        row["repository"] = found.known.repo
    if found.installed is not None:
        row["commit"] = found.installed.commit
        for key in ("pulled_at", "last_used"):
            stamp = getattr(found.installed, key)
            row[key] = (
                datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat() if stamp else None
            )
    for key, value in row.items():
        shown = (", ".join(value) or "?") if isinstance(value, list) else value
        print(f"{key}: {shown if shown is not None else '-'}")


def progress_for_stream() -> Progress:
    """A tqdm bar on a terminal, plain lines on anything else (logs, pipes, CI)."""
    if sys.stderr.isatty():
        return TerminalProgress(sys.stderr)
    return LineProgress(lambda line: print(line, file=sys.stderr, flush=True))


def command_pull(args: argparse.Namespace) -> None:
    """Download a model from the Hugging Face Hub into the model cache (a Piper voice into
    VOXHELM_TTS_VOICES_DIR). An interrupted pull resumes."""
    config = _config()
    try:
        known = catalogue.resolve(args.name)
    except InvalidInput as exc:
        _fail(exc.message)
    store = store_for(config)
    before = store.find(known.name)
    try:
        token = config.diarization.huggingface_token or None
        installed = pull(known, store, progress_for_stream(), token=token)
    except PullFailed as exc:
        _fail(str(exc))
    if before is not None and before.kind == known.kind:
        print(f"{known.name} is already installed ({before.source}, {before.path}).")
        return
    print(f"Installed {installed.name} ({megabytes(installed.size_bytes)}) in {installed.path}.")
    if known.kind == catalogue.Kind.FASTERWHISPER:
        print(
            f"Requests can now use model={installed.name}; to make it the default, set "
            f"VOXHELM_FASTERWHISPER_MODEL={installed.name}."
        )


def command_rm(args: argparse.Namespace) -> None:
    """Remove a pulled model (bundled and packaged models stay)."""
    config = _config()
    store = store_for(config)
    installed = store.find(args.name)
    if installed is None:
        _fail(f"{args.name} is not installed.")
    if not installed.removable:
        _fail(f"{args.name} is {installed.source} with Voxhelm's packages and cannot be removed.")
    store.remove(installed)
    print(f"Removed {installed.name} ({megabytes(installed.size_bytes)}).")

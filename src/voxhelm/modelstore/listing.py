"""One list of models for every surface (CLI, ``/v1/models``, console): installed, known, and
whether each can serve on this machine, and if not, why."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from voxhelm.config import Config
from voxhelm.modelcache.catalogue import KNOWN, Kind, Known, pull_command
from voxhelm.modelstore.inventory import Installed, Store


@dataclass(frozen=True)
class Entry:
    """A model as the lists show it."""

    name: str
    kind: Kind
    installed: Installed | None
    known: Known | None
    reason: str | None  # why it cannot serve here; None = it can
    # The reason as clients of the API see it: never a path of this server (the CLI and
    # the console, which operators use, keep the detail).
    public_reason: str | None = None

    @classmethod
    def missing(cls, known: Known) -> Entry:
        """A known model that is not installed here."""
        return cls(
            known.name, known.kind, None, known, f"not installed: {pull_command(known.name)}"
        )

    @property
    def engine(self) -> str:
        return {Kind.FASTERWHISPER: "fasterwhisper", Kind.GGML: "whispercpp"}.get(
            self.kind, "piper"
        )

    @property
    def size_bytes(self) -> int | None:
        if self.installed is not None:
            return self.installed.size_bytes
        return self.known.size_bytes if self.known is not None else None

    @property
    def languages(self) -> tuple[str, ...]:
        if self.installed is not None and self.installed.languages:
            return self.installed.languages
        if self.known is not None and self.known.english_only:
            return ("en",)
        return ()

    @property
    def reason_for_clients(self) -> str | None:
        return self.public_reason if self.public_reason is not None else self.reason

    @property
    def serves(self) -> bool:
        return self.reason is None


def store_for(config: Config) -> Store:
    return Store(config.stt.model_cache_dir, config.tts.piper_voice_dir)


def engine_problem(kind: Kind, config: Config, *, detail: bool = True) -> str | None:
    """Why no model of ``kind`` can run on this machine; None when they can. Without
    ``detail`` it names no path (what the API says)."""
    if kind == Kind.FASTERWHISPER:
        if importlib.util.find_spec("faster_whisper") is None:
            return "faster-whisper is not installed"
        return None
    if kind == Kind.PIPER:
        return None if importlib.util.find_spec("piper") else "piper-tts is not installed"
    binary = config.stt.whispercpp.bin
    found = Path(binary).expanduser().is_file() if "/" in binary else shutil.which(binary)
    if found:
        return None
    shown = f" ({binary})" if detail else ""
    return f"the whisper.cpp program{shown} is not installed"


def entries(config: Config, *, include_all: bool = False) -> list[Entry]:
    """Installed models (those that can serve first), and with ``include_all`` every known
    model that is not installed, each with its reason."""
    store = store_for(config)
    found: dict[str, Entry] = {}
    for model in store.installed():
        found[model.name] = Entry(
            model.name,
            model.kind,
            model,
            KNOWN.get(model.name),
            engine_problem(model.kind, config),
            engine_problem(model.kind, config, detail=False),
        )
    if include_all:
        for known in KNOWN.values():
            if known.name not in found:
                found[known.name] = Entry.missing(known)
    rows = list(found.values())
    if not include_all:
        rows = [row for row in rows if row.serves]
    return sorted(rows, key=lambda r: (r.kind != Kind.FASTERWHISPER, r.kind, r.name))

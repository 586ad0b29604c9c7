"""What is installed: pulled models in ``VOXHELM_MODEL_CACHE_DIR``, Piper voices, bundled ones.

The cache's layout is :mod:`voxhelm.modelcache.layout`; this module reads every model in it,
asks the engines for the ones that come with installed packages (the bundled ``tiny.en``, the
packaged ``base``, the bundled Piper voice), and removes pulled ones.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from voxhelm.modelcache.catalogue import KNOWN, Kind, Known
from voxhelm.modelcache.layout import (
    FASTERWHISPER_DIR,
    GGML_GLOB,
    LAST_USED,
    MANIFEST,
    STAGING_DIR,
    TRASH_PREFIX,
    fasterwhisper_dir,
    file_stamp,
    last_used,
    pulled_fasterwhisper,
    read_manifest,
)
from voxhelm.stt import multilingual
from voxhelm.stt.faster_whisper import BUNDLED_MODEL_NAME, bundled_model_path
from voxhelm.tts.piper import installed_voices

# Tokens of a multilingual Whisper tokenizer without the 1,501 timestamp tokens (51,865 in
# all); the English-only tokenizer has one fewer, large-v3's one more.
MULTILINGUAL_TOKENS = 50364


@dataclass(frozen=True)
class Installed:
    """One model or voice on this machine."""

    name: str
    kind: Kind
    path: Path  # the model directory, or the file (ggml, a voice's .onnx)
    size_bytes: int
    source: str  # pulled | bundled | packaged | directory (put there by hand)
    languages: tuple[str, ...]  # () when unknown
    repo: str | None = None
    commit: str | None = None
    pulled_at: float | None = None
    last_used: float | None = None

    @property
    def removable(self) -> bool:
        """Bundled and packaged models belong to installed Python packages."""
        return self.source in ("pulled", "directory")


@dataclass(frozen=True)
class Store:
    """The folders models live in (``VOXHELM_MODEL_CACHE_DIR``, ``VOXHELM_TTS_VOICES_DIR``)."""

    cache_dir: Path
    voices_dir: Path

    def staging_dir(self, known: Known) -> Path:
        root = self.voices_dir if known.kind == Kind.PIPER else self.cache_dir
        # Staging sits beside the destination: the final rename never crosses file systems.
        return root / STAGING_DIR / f"{known.kind}-{known.name.replace('/', '--')}"

    def final_path(self, known: Known) -> Path:
        if known.kind == Kind.FASTERWHISPER:
            return fasterwhisper_dir(self.cache_dir, known.name)
        if known.kind == Kind.GGML:
            return self.cache_dir / (known.file or known.name)
        return self.voices_dir / f"{known.name}.onnx"

    # -- reading ---------------------------------------------------------------------
    def installed(self) -> list[Installed]:
        """Everything installed, by kind and name."""
        found = [*self._fasterwhisper(), *self._ggml(), *self._voices()]
        return sorted(found, key=lambda m: (m.kind, m.name))

    def find(self, name: str) -> Installed | None:
        return next((m for m in self.installed() if m.name == name), None)

    def find_fasterwhisper(self, name: str) -> Installed | None:
        """A pulled faster-whisper model by name (one stat and one small read)."""
        folder = pulled_fasterwhisper(name, self.cache_dir)
        return _read_fasterwhisper(folder) if folder is not None else None

    def _fasterwhisper(self) -> list[Installed]:
        models: dict[str, Installed] = {}
        bundled = _bundled_tiny()
        if bundled is not None:
            models[bundled.name] = bundled
        packaged = _packaged_base(self.cache_dir)
        if packaged is not None:
            models[packaged.name] = packaged
        root = self.cache_dir / FASTERWHISPER_DIR
        for folder in sorted(root.iterdir()) if root.is_dir() else ():
            model = _read_fasterwhisper(folder)
            if model is not None:
                models[model.name] = model  # a pulled tiny.en replaces the bundled one
        return list(models.values())

    def _ggml(self) -> list[Installed]:
        if not self.cache_dir.is_dir():
            return []
        return [
            Installed(
                name=path.name,
                kind=Kind.GGML,
                path=path,
                size_bytes=path.stat().st_size,
                source="pulled",
                languages=("en",) if ".en." in path.name else (),
                repo=KNOWN[path.name].repo if path.name in KNOWN else None,
                last_used=last_used(file_stamp(path)),
            )
            for path in sorted(self.cache_dir.glob(GGML_GLOB))
            if path.is_file()
        ]

    def _voices(self) -> list[Installed]:
        result = []
        for voice in installed_voices(self.voices_dir):
            size = voice.model_path.stat().st_size + voice.config_path.stat().st_size
            manifest = read_manifest(self.voices_dir / f".{voice.name}.{MANIFEST}")
            result.append(
                Installed(
                    name=voice.name,
                    kind=Kind.PIPER,
                    path=voice.model_path,
                    size_bytes=size,
                    source=voice.source if manifest is None else "pulled",
                    languages=(voice.language,),
                    repo=(manifest or {}).get("repo"),
                    commit=(manifest or {}).get("commit"),
                    pulled_at=(manifest or {}).get("pulled_at"),
                )
            )
        return result

    # -- removing --------------------------------------------------------------------
    def remove(self, installed: Installed) -> None:
        """Remove a pulled model. The folder is renamed away first, so no loader ever sees
        half a model; a process that has it loaded keeps its copy in memory."""
        if installed.kind == Kind.FASTERWHISPER:
            name = f"{TRASH_PREFIX}{installed.path.name}-{time.time_ns()}"
            trash = installed.path.with_name(name)
            installed.path.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        elif installed.kind == Kind.GGML:
            installed.path.unlink()
            file_stamp(installed.path).unlink(missing_ok=True)
        else:
            # The .onnx first: without it the voice is no longer offered.
            installed.path.unlink()
            installed.path.with_name(f"{installed.name}.onnx.json").unlink(missing_ok=True)
            (self.voices_dir / f".{installed.name}.{MANIFEST}").unlink(missing_ok=True)


def _read_fasterwhisper(folder: Path) -> Installed | None:
    manifest = read_manifest(folder / MANIFEST)
    if manifest is None or not isinstance(manifest.get("name"), str):
        return None
    return Installed(
        name=manifest["name"],
        kind=Kind.FASTERWHISPER,
        path=folder,
        size_bytes=_folder_size(folder),
        source="pulled",
        languages=model_languages(folder),
        repo=manifest.get("repo"),
        commit=manifest.get("commit"),
        pulled_at=manifest.get("pulled_at"),
        last_used=last_used(folder / LAST_USED),
    )


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _bundled_tiny() -> Installed | None:
    path = bundled_model_path()
    if path is None:
        return None
    return Installed(
        BUNDLED_MODEL_NAME,
        Kind.FASTERWHISPER,
        path,
        _folder_size(path),
        "bundled",
        model_languages(path),
    )


def _packaged_base(cache_dir: Path) -> Installed | None:
    if not multilingual.is_installed() or multilingual.check():
        return None
    files = multilingual.source_files()
    return Installed(
        multilingual.MODEL_NAME,
        Kind.FASTERWHISPER,
        multilingual.model_dir(cache_dir),
        sum(path.stat().st_size for path in files.values()),
        "packaged",
        model_languages(files["config.json"].parent),
    )


def model_languages(folder: Path) -> tuple[str, ...]:
    """The languages a CTranslate2 Whisper model transcribes, in Whisper's token order."""
    try:
        stamp = (folder / "tokenizer.json").stat().st_mtime_ns
    except OSError:
        return ()
    return _languages(folder, stamp)


@functools.lru_cache(maxsize=64)
def _languages(folder: Path, stamp: int) -> tuple[str, ...]:
    # ``stamp`` keys the cache: a re-pulled model is read again.
    try:
        tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    added = {t["id"]: t["content"] for t in tokenizer.get("added_tokens", ())}
    # English-only models list language tokens too; their vocabulary is one token short.
    if max(added, default=0) + 1 < MULTILINGUAL_TOKENS:
        return ("en",)
    ids = config.get("lang_ids") or []
    codes = (added.get(i, "") for i in ids)
    return tuple(c[2:-2] for c in codes if c.startswith("<|") and c.endswith("|>"))


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` is (or would be created)."""
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a crash then shows the old name or the new)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Where pulled models live in ``VOXHELM_MODEL_CACHE_DIR``, and the last-use stamps.

Layout of the model cache (the model store owns every name in it that starts with these):

* ``fasterwhisper/<name>/``: one pulled CTranslate2 model (``/`` of a repository id becomes
  ``--``), with ``voxhelm-model.json``, the manifest written last, before the folder is
  renamed into place: a folder without one is not a model;
* ``ggml-*.bin``: whisper.cpp files, where whisper.cpp resolves bare names;
* ``.staging/``: pulls in progress or interrupted (resumed by the next pull), never loaded;
* ``whisper-base-ct2/``: the multilingual ``base`` assembled from its packages.

Piper voices are pulled into ``VOXHELM_TTS_VOICES_DIR``, where the Piper engine finds them.
The engines read this module to find a pulled model and to stamp its use; they never write
a model (:mod:`voxhelm.modelstore.pull` does).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

MANIFEST = "voxhelm-model.json"
LAST_USED = ".last-used"
FASTERWHISPER_DIR = "fasterwhisper"
STAGING_DIR = ".staging"
TRASH_PREFIX = ".trash-"
GGML_GLOB = "ggml-*.bin"


def fasterwhisper_dir(cache_dir: Path, name: str) -> Path:
    """Where the faster-whisper model ``name`` is (or would be) pulled."""
    return cache_dir / FASTERWHISPER_DIR / name.replace("/", "--")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest's content, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pulled_fasterwhisper(name: str, cache_dir: Path) -> Path | None:
    """The folder of the faster-whisper model ``name`` pulled into ``cache_dir``, or None."""
    folder = fasterwhisper_dir(cache_dir, name)
    manifest = read_manifest(folder / MANIFEST)
    return folder if manifest is not None and manifest.get("name") == name else None


def stt_models(cache_dir: Path) -> dict[str, str]:
    """Pulled speech-to-text models by name -> the backend that serves them (cheap: the
    registry asks on every request)."""
    models: dict[str, str] = {}
    root = cache_dir / FASTERWHISPER_DIR
    for manifest_path in sorted(root.glob(f"*/{MANIFEST}")) if root.is_dir() else ():
        manifest = read_manifest(manifest_path)
        if manifest is not None and isinstance(manifest.get("name"), str):
            models[manifest["name"]] = "fasterwhisper"
    for path in sorted(cache_dir.glob(GGML_GLOB)) if cache_dir.is_dir() else ():
        models[path.name] = "whispercpp"
    return models


def file_stamp(model_file: Path) -> Path:
    """The last-use stamp of a single-file model (a ggml file), beside it."""
    return model_file.parent / f".{model_file.name}{LAST_USED}"


def mark_used(model_dir: Path) -> None:
    """Record that a pulled model was loaded now (the console shows "last use")."""
    with contextlib.suppress(OSError):  # a read-only model directory still serves
        (model_dir / LAST_USED).touch()


def mark_file_used(model_file: Path) -> None:
    """Record that a single-file model (a ggml file) was used now."""
    with contextlib.suppress(OSError):
        file_stamp(model_file).touch()


def last_used(stamp: Path) -> float | None:
    """When ``stamp`` was last touched, or None when it was never."""
    try:
        return stamp.stat().st_mtime
    except OSError:
        return None

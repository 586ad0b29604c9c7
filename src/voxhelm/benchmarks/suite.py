"""The benchmark suite: which scripts under ``bench/`` run, with which arguments.

Run counts are chosen so that the default run stays under 15 minutes on 2 CPU cores;
``--quick`` runs each script once or twice, on shorter audio. A script run alone (``uv run
python bench/NAME.py``) uses its own, longer defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

JsonMode = Literal["path", "stdout"]


@dataclass(frozen=True)
class Benchmark:
    """One script under ``bench/`` and how the runner calls it."""

    name: str  # the script is bench/<name>.py
    about: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    # Seconds a default and a quick run take on 2 busy cores (for the progress bar).
    expected_seconds: tuple[float, float]
    # "path": the script takes ``--json PATH`` and writes its figures there; "stdout": it
    # takes a ``--json`` flag and prints one JSON document instead of its table.
    json_mode: JsonMode = "path"
    # Written by someone else and maybe not there yet: a missing script is "not measured".
    optional: bool = False

    @property
    def script(self) -> str:
        return f"{self.name}.py"

    def arguments(self, quick: bool) -> tuple[str, ...]:
        return self.quick_args if quick else self.args

    def expected(self, quick: bool) -> float:
        return self.expected_seconds[1 if quick else 0]


SUITE: tuple[Benchmark, ...] = (
    Benchmark(
        "sync_overhead",
        "HTTP transcription vs a plain in-process faster-whisper call, same audio",
        # the two sides swing by 10-20 % run to run; then 3 runs of 150 s
        ("--runs", "7", "--seconds", "30", "--long-seconds", "150"),
        ("--runs", "2", "--long-seconds", "60"),
        (150, 70),
    ),
    Benchmark(
        "engine_speed",
        "faster-whisper unbatched vs BatchedInferencePipeline(batch_size=8), ~2 min speech",
        ("--runs", "3", "--seconds", "120"),
        ("--runs", "1", "--seconds", "30"),
        (90, 20),
    ),
    Benchmark(
        "backends",
        "realtime factor, WER and peak RSS per STT backend and model",
        ("--runs", "1", "--seconds", "30"),
        ("--runs", "1", "--seconds", "10"),
        (135, 135),
    ),
    Benchmark(
        "wyoming_latency",
        "Wyoming end of audio to transcript vs wyoming-faster-whisper, idle and under load",
        # 24 runs: every one of the eight commands three times (early decoding helps some
        # commands more than others, so fewer runs make the medians depend on which ran).
        ("--runs", "24", "--warm-up", "2"),
        ("--runs", "2", "--warm-up", "1"),
        (330, 65),
    ),
    Benchmark(
        "longform",
        "a long recording through a batch job vs one plain faster-whisper pass",
        # Long enough for chunks (VOXHELM_CHUNK_SECONDS, 600): shorter audio is one chunk.
        ("--minutes", "30", "--workers", "2"),
        ("--minutes", "1", "--workers", "2"),
        (200, 60),
        optional=True,
    ),
    Benchmark(
        "remote_workers",
        "jobs per minute with 1 and 2 remote pull workers",
        ("--skip-claims", "--batch", "12"),  # six jobs each: the lone last job weighs less
        ("--skip-claims", "--batch", "4"),
        (60, 40),
    ),
    Benchmark(
        "memory",
        "RSS of voxhelm serve with tiny.en loaded, and its growth in a soak",
        ("--soak-minutes", "1"),
        ("--soak-minutes", "0.25"),
        (95, 40),
    ),
    Benchmark(
        "cold_start",
        "voxhelm serve spawned on a fresh state directory to its first transcription",
        ("--runs", "3"),
        ("--runs", "1"),
        (30, 10),
    ),
    Benchmark(
        "tts",
        "speech synthesis: realtime factor and time to first audio",
        ("--runs", "1"),
        ("--runs", "1"),
        (40, 40),
    ),
    Benchmark(
        "upload_memory",
        "server RSS growth while a large upload streams into the artifact store",
        ("--mib", "50"),
        ("--mib", "20"),
        (10, 6),
    ),
    Benchmark(
        "model_unload",
        "RSS before loading, loaded and unloaded, twice (idle model unloading)",
        (),
        (),
        (10, 10),
        json_mode="stdout",
    ),
    Benchmark(
        "diarization",
        "diarization error rate and speed on synthetic conversations",
        ("--turns", "8"),
        ("--turns", "4"),
        (12, 6),
        json_mode="stdout",
    ),
    Benchmark(
        "peer_speaches",
        "Voxhelm vs the speaches server: long audio, a short clip, 8 clients, RSS",
        # --no-install: the peer's 8 GB environment is set up by running the script alone
        # once; until then (or without its snapshot or Python 3.12) the script skips. Three
        # runs, not the script's five: 150 s of audio takes each server 15-30 s on busy cores.
        ("--runs", "3", "--no-install"),
        ("--runs", "1", "--long-seconds", "60", "--requests", "1", "--no-install"),
        (460, 90),
    ),
)


def select(names: str | None, suite: tuple[Benchmark, ...] = SUITE) -> list[Benchmark]:
    """The benchmarks named in ``names`` (comma-separated, suite order), or all of them.

    Raises ValueError for a name the suite does not know.
    """
    if not names:
        return list(suite)
    wanted = {part.strip() for part in names.split(",") if part.strip()}
    unknown = sorted(wanted - {bench.name for bench in suite})
    if unknown:
        known = ", ".join(bench.name for bench in suite)
        raise ValueError(f"unknown benchmark {', '.join(unknown)} (known: {known})")
    return [bench for bench in suite if bench.name in wanted]


def find_bench_dir(start: Path | None = None) -> Path | None:
    """The ``bench/`` folder of a source checkout: under the working directory, or beside the
    ``src/`` this package was imported from."""
    candidates = [(start or Path.cwd()) / "bench", Path(__file__).resolve().parents[3] / "bench"]
    return next((path for path in candidates if path.is_dir()), None)


def unknown_scripts(bench_dir: Path, suite: tuple[Benchmark, ...] = SUITE) -> list[str]:
    """Scripts under ``bench_dir`` that the suite does not run (listed in the report)."""
    known = {bench.script for bench in suite}
    return sorted(
        path.name
        for path in bench_dir.glob("*.py")
        if path.name not in known and not path.name.startswith("_")
    )

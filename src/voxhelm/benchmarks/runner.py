"""Running the suite: each benchmark script in its own process, one progress line each."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from voxhelm.benchmarks.report import BenchRun, RunInfo, describe_machine, format_duration, render
from voxhelm.benchmarks.suite import SUITE, Benchmark, find_bench_dir, select, unknown_scripts

BAR_WIDTH = 24
MIN_TIMEOUT_SECONDS = 300.0
TIMEOUT_FACTOR = 5  # a benchmark taking five times its expected time is stopped
TAIL_LINES = 15


class Progress:
    """One line per benchmark: a live bar with elapsed time on a terminal, a plain line else."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total
        self.live = out.isatty()
        self.label = ""

    def start(self, index: int, name: str) -> None:
        width = len(str(self.total))
        self.label = f"[{index:>{width}}/{self.total}] {name:<16}"

    def update(self, elapsed: float, expected: float) -> None:
        if not self.live:
            return
        done = min(BAR_WIDTH - 1, int(BAR_WIDTH * elapsed / expected)) if expected else 0
        bar = "#" * done + "-" * (BAR_WIDTH - done)
        self.out.write(f"\r{self.label} [{bar}] {elapsed:5.0f} s (~{expected:.0f} s)")
        self.out.flush()

    def finish(self, status: str, elapsed: float) -> None:
        clear = "\r\033[K" if self.live else ""
        self.out.write(f"{clear}{self.label} {status:<12} {format_duration(elapsed)}\n")
        self.out.flush()


def run_benchmark(
    bench: Benchmark, bench_dir: Path, log_dir: Path, quick: bool, progress: Progress
) -> BenchRun:
    """Run one script to its end (or its timeout) and read its JSON figures."""
    script = bench_dir / bench.script
    args = bench.arguments(quick)
    command = f"python bench/{bench.script} {' '.join(args)}".rstrip()
    if not script.is_file():
        reason = f"bench/{bench.script} does not exist (yet)"
        progress.finish("missing" if bench.optional else "FAILED", 0.0)
        return BenchRun(
            bench.name, bench.about, command, 0.0, error=reason, failed=not bench.optional
        )
    figures_path = log_dir / f"{bench.name}.json"
    log_path = log_dir / f"{bench.name}.log"
    argv = [sys.executable, str(script), *args, "--json"]
    if bench.json_mode == "path":
        argv.append(str(figures_path))
    expected = bench.expected(quick)
    timeout = max(MIN_TIMEOUT_SECONDS, TIMEOUT_FACTOR * bench.expected(quick=False))
    started = time.monotonic()
    stdout_path = figures_path if bench.json_mode == "stdout" else log_path
    with log_path.open("a", encoding="utf-8") as log, stdout_path.open("a") as stdout:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, a script of bench/, no shell
            argv,
            cwd=bench_dir.parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=stdout,
            stderr=log,
            start_new_session=True,  # its own process group: servers it starts end with it
        )
        code = wait(process, started, timeout, expected, progress)
    elapsed = time.monotonic() - started
    error = None
    figures = None
    if code is None:
        error = f"timed out after {format_duration(elapsed)}"
    elif code != 0:
        error = f"failed (exit {code}): {tail(log_path, 1) or 'no output'}"
    else:
        figures, error = read_figures(figures_path)
    progress.finish("ok" if error is None else ("TIMEOUT" if code is None else "FAILED"), elapsed)
    if error is not None and code is not None:
        progress.out.write(indent(tail(log_path, TAIL_LINES)) + "\n")
    return BenchRun(bench.name, bench.about, command, elapsed, figures, error, error is not None)


def wait(
    process: subprocess.Popen[bytes],
    started: float,
    timeout: float,
    expected: float,
    progress: Progress,
) -> int | None:
    """The exit code, or None when the timeout ended the process group."""
    try:
        while True:
            elapsed = time.monotonic() - started
            progress.update(elapsed, expected)
            if elapsed > timeout:
                stop_group(process)
                return None
            try:
                return process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                continue
    except BaseException:  # Ctrl-C: take the servers it started down with it
        stop_group(process)
        raise


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the script's process group, SIGKILL after 15 s."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def read_figures(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The figures a script wrote (a JSON list is kept under ``rows``), or why there are none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"no readable JSON figures ({type(exc).__name__})"
    if isinstance(data, list):
        return {"rows": data}, None
    if not isinstance(data, dict):
        return None, "the JSON figures are not an object"
    return data, None


def tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def run(
    *,
    quick: bool = False,
    only: str | None = None,
    output: Path | None = None,
    bench_dir: Path | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """``voxhelm bench``: run the suite, write the report; 0 when every benchmark ran."""
    folder = bench_dir or find_bench_dir()
    if folder is None or not folder.is_dir():
        out.write("voxhelm bench: no bench/ folder here; run it in a source checkout.\n")
        return 2
    try:
        chosen = select(only)
    except ValueError as exc:
        out.write(f"voxhelm bench: {exc}\n")
        return 2
    target = output or folder.parent / "docs" / "benchmarks.md"
    expected = sum(bench.expected(quick) for bench in chosen)
    mode = "quick" if quick else "default"
    out.write(
        f"voxhelm bench: {len(chosen)} benchmark{'s' if len(chosen) != 1 else ''}, {mode} mode, "
        f"about {format_duration(expected)} on 2 cores\n"
    )
    out.flush()
    started_at = datetime.now(UTC)
    machine = describe_machine()
    started = time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix="voxhelm-bench-"))
    progress = Progress(out, len(chosen))
    runs = []
    for index, bench in enumerate(chosen, start=1):
        progress.start(index, bench.name)
        runs.append(run_benchmark(bench, folder, log_dir, quick, progress))
    info = RunInfo(
        started=started_at,
        seconds=time.monotonic() - started,
        quick=quick,
        machine=machine,
        not_run=unknown_scripts(folder, SUITE),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(runs, info), encoding="utf-8")
    failed = [r.name for r in runs if r.failed]
    out.write(f"total {format_duration(info.seconds)}; report written to {target}\n")
    if failed:
        out.write(f"failed: {', '.join(failed)}; logs kept in {log_dir}\n")
        return 1
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0

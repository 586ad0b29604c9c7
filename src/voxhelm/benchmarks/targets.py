"""The performance targets of the benchmark report and how each is judged from the figures.

Each target reads the JSON figures of one benchmark (and maybe others, for context) and
gives a measured value as text and a verdict: met, not met, reported (a figure with no
threshold), or not measured (its benchmark did not run, failed, lacks the figure, or skipped:
a script that cannot measure here, e.g. for want of a peer server, writes ``{"skipped": true,
"reason": ...}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Figures = Mapping[str, Any]
Results = Mapping[str, Figures]

MET = "met"
NOT_MET = "not met"
REPORTED = "reported"
NOT_MEASURED = "not measured"

SYNC_OVERHEAD_MAX = 1.05
SYNC_LONG_MAX = 0.6
BATCHED_SPEEDUP_MIN = 1.3
WYOMING_SPEEDUP_MIN = 1.2
UNDER_LOAD_MAX = 1.5
LONGFORM_RATIO_MAX = 0.9
SCALE_OUT_MIN = 1.6
RSS_MAX_MB = 450.0
SOAK_GROWTH_MAX_PERCENT = 10.0
COLD_START_MAX_SECONDS = 5.0
WER_POINTS_MAX = 1.0  # "same accuracy": word error rate within one point
# Against the speaches server: speedups are its wall time over Voxhelm's, ratios Voxhelm's
# figure over its.
PEER_LONG_SPEEDUP_MIN = 1.3
PEER_SHORT_SPEEDUP_MIN = 1.5
PEER_THROUGHPUT_MIN = 1.2
PEER_RSS_RATIO_MAX = 1 / 3


@dataclass(frozen=True)
class Outcome:
    """A target's measured value and verdict."""

    measured: str
    verdict: str


@dataclass(frozen=True)
class Target:
    """One row of the targets table."""

    what: str
    goal: str
    source: str  # the benchmark whose figures decide it
    judge: Callable[[Figures, Results], tuple[str, bool | None]]

    def evaluate(self, results: Results) -> Outcome:
        figures = results.get(self.source)
        if figures is None:
            return Outcome(NOT_MEASURED, NOT_MEASURED)
        if figures.get("skipped"):
            return Outcome(f"skipped: {figures.get('reason', 'no reason given')}", NOT_MEASURED)
        try:
            measured, met = self.judge(figures, results)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            return Outcome(f"figures unreadable ({type(exc).__name__}: {exc})", NOT_MEASURED)
        if met is None:
            return Outcome(measured, REPORTED)
        return Outcome(measured, MET if met else NOT_MET)


def format_wer(wer: float) -> str:
    return f"{100 * wer:.1f} %"


def judge_sync_overhead(f: Figures, _: Results) -> tuple[str, bool | None]:
    ratio = float(f["ratio"])
    text = (
        f"{ratio:.3f} ({f['http_median_seconds']:.3f} s vs {f['raw_median_seconds']:.3f} s "
        f"on {f['audio_seconds']} s of audio)"
    )
    return text, ratio <= SYNC_OVERHEAD_MAX


def judge_sync_long(f: Figures, _: Results) -> tuple[str, bool | None]:
    long = f.get("long")
    if not isinstance(long, dict):
        return "not measured (--long-seconds 0)", None
    ratio = float(long["ratio"])
    points = (float(long["http_wer"]) - float(long["raw_wer"])) * 100
    text = (
        f"{ratio:.3f} ({long['http_median_seconds']:.3f} s vs {long['raw_median_seconds']:.3f} s "
        f"on {long['audio_seconds']} s of audio; WER {points:+.1f} points vs the plain pass, "
        f"peak RSS {long['peak_rss_mb']} MB)"
    )
    return text, ratio <= SYNC_LONG_MAX and points <= WER_POINTS_MAX


def judge_realtime_factors(f: Figures, results: Results) -> tuple[str, bool | None]:
    sides = f["sides"]
    parts = [
        f"faster-whisper tiny.en {sides['unbatched']['realtime_factor']:.1f}x unbatched, "
        f"{sides['batched']['realtime_factor']:.1f}x batched"
    ]
    for row in results.get("backends", {}).get("backends", []):
        if "realtime_factor" in row:
            parts.append(f"{row['backend']} {row['model']} {row['realtime_factor']:.1f}x")
        else:
            parts.append(f"{row['backend']} {row['model']} unavailable")
    return "; ".join(parts), None


def judge_batched(f: Figures, _: Results) -> tuple[str, bool | None]:
    ratio = float(f["speed_ratio"])
    plain, batched = f["sides"]["unbatched"]["wer"], f["sides"]["batched"]["wer"]
    text = f"{ratio:.2f}x (WER {format_wer(batched)} batched, {format_wer(plain)} unbatched)"
    return text, ratio >= BATCHED_SPEEDUP_MIN and (batched - plain) * 100 <= WER_POINTS_MAX


def judge_wyoming(f: Figures, _: Results) -> tuple[str, bool | None]:
    mine, peer = f["servers"]["voxhelm"], f["servers"]["wyoming-faster-whisper"]
    ratio = float(f["peer_over_voxhelm_idle_p50"])
    text = (
        f"{ratio:.2f}x (p50 {mine['idle_p50']:.3f} s vs {peer['idle_p50']:.3f} s, "
        f"p95 {mine['idle_p95']:.3f} s vs {peer['idle_p95']:.3f} s; "
        f"WER {format_wer(mine['wer'])} vs {format_wer(peer['wer'])})"
    )
    same_accuracy = (mine["wer"] - peer["wer"]) * 100 <= WER_POINTS_MAX
    return text, ratio >= WYOMING_SPEEDUP_MIN and same_accuracy


def judge_under_load(f: Figures, _: Results) -> tuple[str, bool | None]:
    mine = f["servers"]["voxhelm"]
    ratio = float(mine["load_over_idle_p50"])
    text = (
        f"{ratio:.2f} (Wyoming p50 {mine['load_p50']:.3f} s under load, "
        f"{mine['idle_p50']:.3f} s idle)"
    )
    return text, ratio <= UNDER_LOAD_MAX


def judge_longform(f: Figures, _: Results) -> tuple[str, bool | None]:
    if f.get("ratio") is None:
        raise KeyError("ratio")
    ratio, delta = float(f["ratio"]), float(f["wer_delta_points"])
    minutes = f.get("audio_minutes")
    length = f" on {minutes:.0f} min" if isinstance(minutes, int | float) else ""
    text = f"{ratio:.2f}{length} (WER {delta:+.2f} points vs the plain pass)"
    return text, ratio <= LONGFORM_RATIO_MAX and delta <= WER_POINTS_MAX


def judge_scale_out(f: Figures, _: Results) -> tuple[str, bool | None]:
    ratio = float(f["scale_out"])
    one, two = (row["jobs_per_minute"] for row in f["throughput"][:2])
    return f"{ratio:.2f}x ({one:.1f} vs {two:.1f} jobs/min)", ratio >= SCALE_OUT_MIN


def judge_rss(f: Figures, _: Results) -> tuple[str, bool | None]:
    peak = max(float(f["rss_loaded_mb"]), float(f.get("soak_peak_mb", 0.0)))
    text = f"{peak:.0f} MB (after the first transcription {f['rss_loaded_mb']:.0f} MB)"
    return text, peak <= RSS_MAX_MB


def judge_soak(f: Figures, _: Results) -> tuple[str, bool | None]:
    growth = float(f["soak_growth_percent"])
    text = (
        f"{growth:+.1f} % over a {f['soak_minutes']:.2g} min soak "
        f"({f['soak_requests']} requests; median RSS of the first and last fifth after "
        f"warm-up {f['soak_start_mb']:.0f} and {f['soak_end_mb']:.0f} MB)"
    )
    return text, growth < SOAK_GROWTH_MAX_PERCENT


def judge_cold_start(f: Figures, _: Results) -> tuple[str, bool | None]:
    median = float(f["median_seconds"])
    return f"{median:.2f} s (median of {f['runs']})", median <= COLD_START_MAX_SECONDS


def judge_peer_speed(length: str) -> Callable[[Figures, Results], tuple[str, bool | None]]:
    """The judge of the ``long`` or ``short`` audio row against speaches."""
    least = PEER_LONG_SPEEDUP_MIN if length == "long" else PEER_SHORT_SPEEDUP_MIN

    def judge(f: Figures, _: Results) -> tuple[str, bool | None]:
        mine, peer = f["servers"]["voxhelm"], f["servers"]["speaches"]
        speedup = float(f[f"{length}_speedup"])
        wers = mine[f"{length}_wer"], peer[f"{length}_wer"]
        text = (
            f"{speedup:.2f}x ({mine[f'{length}_median_seconds']:.2f} s vs "
            f"{peer[f'{length}_median_seconds']:.2f} s on {f[f'{length}_audio_seconds']} s; "
            f"WER {format_wer(wers[0])} vs {format_wer(wers[1])})"
        )
        return text, speedup >= least and (wers[0] - wers[1]) * 100 <= WER_POINTS_MAX

    return judge


def judge_peer_throughput(f: Figures, _: Results) -> tuple[str, bool | None]:
    mine, peer = f["servers"]["voxhelm"], f["servers"]["speaches"]
    ratio = float(f["throughput_ratio"])
    text = (
        f"{ratio:.2f}x ({mine['requests_per_second']:.2f} vs {peer['requests_per_second']:.2f} "
        f"requests/s, {f['clients']} clients; errors {mine['errors']} vs {peer['errors']})"
    )
    return text, ratio >= PEER_THROUGHPUT_MIN and mine["errors"] == 0


def judge_peer_rss(f: Figures, _: Results) -> tuple[str, bool | None]:
    mine, peer = f["servers"]["voxhelm"], f["servers"]["speaches"]
    ratio = float(f["rss_ratio"])
    text = f"{ratio:.2f} (peak {mine['peak_rss_mb']} MB vs {peer['peak_rss_mb']} MB)"
    return text, ratio <= PEER_RSS_RATIO_MAX


TARGETS: tuple[Target, ...] = (
    Target(
        "sync API overhead",
        f"wall(HTTP) / wall(in-process faster-whisper) <= {SYNC_OVERHEAD_MAX}",
        "sync_overhead",
        judge_sync_overhead,
    ),
    Target(
        "sync transcription of long audio",
        f"wall(HTTP) / wall(in-process faster-whisper) <= {SYNC_LONG_MAX} on 2-5 min, idle "
        f"machine, WER within {WER_POINTS_MAX:.0f} point",
        "sync_overhead",
        judge_sync_long,
    ),
    Target(
        "engine speed: realtime factor",
        "report, per backend and model",
        "engine_speed",
        judge_realtime_factors,
    ),
    Target(
        "engine speed: batched pipeline",
        f">= {BATCHED_SPEEDUP_MIN}x faster than unbatched, WER within {WER_POINTS_MAX:.0f} point",
        "engine_speed",
        judge_batched,
    ),
    Target(
        "Wyoming latency",
        f">= {WYOMING_SPEEDUP_MIN}x faster than wyoming-faster-whisper (p50, 2-4 s commands), "
        f"WER within {WER_POINTS_MAX:.0f} point",
        "wyoming_latency",
        judge_wyoming,
    ),
    Target(
        "interactive under load",
        f"latency during a running batch transcription / idle <= {UNDER_LOAD_MAX}",
        "wyoming_latency",
        judge_under_load,
    ),
    Target(
        "long-form",
        f"batch job / one plain engine pass <= {LONGFORM_RATIO_MAX}, "
        f"WER within {WER_POINTS_MAX:.0f} point",
        "longform",
        judge_longform,
    ),
    Target(
        "scale-out",
        f"jobs/min with 2 workers >= {SCALE_OUT_MIN}x 1 worker",
        "remote_workers",
        judge_scale_out,
    ),
    Target(
        "memory",
        f"RSS of serve with tiny.en loaded <= {RSS_MAX_MB:.0f} MB",
        "memory",
        judge_rss,
    ),
    Target(
        "memory: soak",
        f"RSS growth < {SOAK_GROWTH_MAX_PERCENT:.0f} % (10 min soak)",
        "memory",
        judge_soak,
    ),
    Target(
        "cold start",
        f"voxhelm serve to first successful transcription <= {COLD_START_MAX_SECONDS:.0f} s",
        "cold_start",
        judge_cold_start,
    ),
    Target(
        "vs speaches: long audio",
        f"speaches / Voxhelm wall time >= {PEER_LONG_SPEEDUP_MIN} (2-5 min), "
        f"WER within {WER_POINTS_MAX:.0f} point",
        "peer_speaches",
        judge_peer_speed("long"),
    ),
    Target(
        "vs speaches: short clip",
        f"speaches / Voxhelm wall time >= {PEER_SHORT_SPEEDUP_MIN} (~10 s), "
        f"WER within {WER_POINTS_MAX:.0f} point",
        "peer_speaches",
        judge_peer_speed("short"),
    ),
    Target(
        "vs speaches: throughput",
        f"Voxhelm / speaches requests/s >= {PEER_THROUGHPUT_MIN} (8 clients), no Voxhelm errors",
        "peer_speaches",
        judge_peer_throughput,
    ),
    Target(
        "vs speaches: memory",
        "Voxhelm / speaches peak RSS <= 1/3",
        "peer_speaches",
        judge_peer_rss,
    ),
)


def evaluate(
    results: Results, targets: tuple[Target, ...] = TARGETS
) -> list[tuple[Target, Outcome]]:
    """Every target with its outcome, in table order."""
    return [(target, target.evaluate(results)) for target in targets]

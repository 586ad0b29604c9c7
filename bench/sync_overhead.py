"""Synchronous API overhead: HTTP transcription vs a plain in-process faster-whisper call.

Same audio (Piper speech), same model (bundled tiny.en, int8 on CPU), same decoding options.
Runs are interleaved so that machine noise hits both sides alike. Prints a table with the
median wall times, their ratio, the realtime factors, the word error rates and the peak RSS
of the server process: once for a clip of ``--seconds`` (one window: the overhead of the
service, goal <= 1.05) and once for ``--long-seconds`` (several windows, which the server
runs side by side on the idle slots: goal <= 0.6 for 2-5 minutes; 0 skips it).

    uv run python bench/sync_overhead.py [--runs 7] [--seconds 30] [--long-seconds 150]
        [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PRODUCER_TOKEN, start_server  # noqa: E402
from tests.speech import EPISODE, Speech, passage, word_error_rate  # noqa: E402

from voxhelm.config import load_config  # noqa: E402
from voxhelm.stt.faster_whisper import TEMPERATURE_SCHEDULE, bundled_model_path  # noqa: E402


def speech_of(seconds: float) -> Speech:
    one = passage(EPISODE)
    repeats = max(1, round(seconds / one.duration))
    return Speech(
        text=" ".join([one.text] * repeats),
        samples=np.tile(one.samples, repeats),
        sample_rate=one.sample_rate,
    )


def raw_engine():  # type: ignore[no-untyped-def]
    from faster_whisper import WhisperModel

    return WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8")


def raw_call(model, wav: Path) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """What a user would write without Voxhelm: decode the file and transcribe it."""
    fw = load_config({}).stt.fasterwhisper
    started = time.perf_counter()
    segments, _info = model.transcribe(
        str(wav),
        beam_size=fw.beam_size,
        temperature=list(TEMPERATURE_SCHEDULE),
        condition_on_previous_text=fw.condition_on_previous_text,
        vad_filter=fw.vad_filter,
    )
    text = " ".join(s.text.strip() for s in segments)
    elapsed = time.perf_counter() - started
    assert text
    return elapsed, text


def http_call(client: httpx.Client, data: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("speech.wav", data, "audio/wav")},
        data={"model": "whisper-1"},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    text = response.json()["text"]
    assert text
    return elapsed, text


class PeakRss:
    """Samples a process's RSS (VmHWM where the kernel has it) every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> int:
        """The RSS now, in bytes."""
        return int(self.process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.sample())

    def halt(self) -> None:
        self._stop.set()
        self._thread.join()

    def stop(self) -> int:
        self.halt()
        status = Path(f"/proc/{self.process.pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(self.peak, int(line.split()[1]) * 1024)
        return self.peak


def measure(speech: Speech, runs: int) -> dict[str, float]:
    """Median wall times, WERs and the server's peak RSS for ``speech``, both sides."""
    data = speech.wav_bytes()
    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp:
        wav = Path(tmp) / "speech.wav"
        wav.write_bytes(data)
        server = start_server(Path(tmp), command="web")
        rss = PeakRss(server.process.pid)
        model = raw_engine()
        http: list[tuple[float, str]] = []
        raw: list[tuple[float, str]] = []
        try:
            with httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {PRODUCER_TOKEN}"},
                timeout=600,
            ) as client:
                http_call(client, data)  # warm-up: model load and first-call costs
                raw_call(model, wav)
                for _ in range(runs):
                    http.append(http_call(client, data))
                    raw.append(raw_call(model, wav))
        finally:
            peak = rss.stop()
            server.stop()
    http_median = statistics.median(t for t, _ in http)
    raw_median = statistics.median(t for t, _ in raw)
    return {
        "audio_seconds": round(speech.duration, 1),
        "runs": runs,
        "http_median_seconds": round(http_median, 4),
        "raw_median_seconds": round(raw_median, 4),
        "ratio": round(http_median / raw_median, 4),
        "http_realtime_factor": round(speech.duration / http_median, 2),
        "raw_realtime_factor": round(speech.duration / raw_median, 2),
        "http_wer": round(statistics.mean(word_error_rate(speech.text, t) for _, t in http), 4),
        "raw_wer": round(statistics.mean(word_error_rate(speech.text, t) for _, t in raw), 4),
        "peak_rss_mb": round(peak / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length")
    parser.add_argument("--long-seconds", type=float, default=150.0, help="long audio; 0: none")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    figures: dict[str, object] = dict(measure(speech_of(args.seconds), args.runs))
    if args.long_seconds:
        figures["long"] = measure(speech_of(args.long_seconds), max(3, args.runs // 2))
    print("model tiny.en int8 CPU; HTTP is voxhelm web, in-process is a plain faster-whisper call")
    print()
    print("| measure | audio | HTTP | in-process | ratio | WER HTTP / in-process | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for row in (figures, figures.get("long")):
        if isinstance(row, dict):
            print(
                f"| median of {row['runs']} | {row['audio_seconds']} s "
                f"| {row['http_median_seconds']:.3f} s | {row['raw_median_seconds']:.3f} s "
                f"| {row['ratio']:.3f} | {row['http_wer']:.3f} / {row['raw_wer']:.3f} "
                f"| {row['peak_rss_mb']} MB |"
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

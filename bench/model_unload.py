"""Idle model unloading: does the process really give the memory back?

In a fresh process: import the engine libraries, then transcribe one clip with a model
through the shared registry (so it loads), unload it as the idle sweeper does
(``Engines.unload_idle`` + ``lifecycle.release_memory``), and do it all a second time to
show that load/unload cycles do not ratchet up. Prints the resident set size (RSS) after
each step, in MB, and ``--json`` prints them as one JSON object (tests/stt/test_lifecycle.py
reads that).

    uv run python bench/model_unload.py [--model base] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss / MB)


def measure(model: str, var_dir: Path) -> dict[str, float]:
    """RSS (MB) before loading, loaded, unloaded, loaded again and unloaded again."""
    import ctranslate2  # noqa: F401 - the libraries count as baseline, not as the model
    import faster_whisper  # noqa: F401
    from tests.conftest import make_config
    from tests.speech import passage

    from voxhelm import audio
    from voxhelm.stt import lifecycle
    from voxhelm.stt.base import TranscriptionRequest
    from voxhelm.stt.registry import Engines

    speech = passage()
    clip = audio.decode(speech.wav_bytes())
    # The alias default is tiny.en, which is pinned; any other model is unloadable.
    stt = make_config(var_dir, VOXHELM_MODEL_IDLE_SECONDS="1").stt
    engines = Engines()
    lifecycle.release_memory()
    figures = {"before": rss_mb()}
    for round_ in ("", "_again"):
        text = engines.transcribe(clip, model, TranscriptionRequest(), stt).text
        assert text, "the model transcribed nothing"
        figures[f"loaded{round_}"] = rss_mb()
        unloaded = engines.unload_idle(0.0)
        assert [backend.model for backend in unloaded] == [model], unloaded
        lifecycle.release_memory()
        figures[f"unloaded{round_}"] = rss_mb()
    return {key: round(value, 1) for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="a model other than the default")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory(prefix="voxhelm-bench-") as tmp:
        figures = measure(args.model, Path(tmp))
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key:>16}: {value:7.1f} MB")
    freed = figures["loaded"] - figures["unloaded"]
    grown = figures["loaded"] - figures["before"]
    print(f"loading {args.model} added {grown:.0f} MB; unloading gave back {freed:.0f} MB")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

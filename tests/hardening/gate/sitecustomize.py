"""Breakpoints for the fault suite, loaded by a worker process it starts (``PYTHONPATH``).

The fault tests kill a real worker with SIGKILL at a chosen step of a job. The steps of a
one-sentence job pass in milliseconds, so a poll from outside cannot hit each one reliably;
this module makes the worker stop *at* the step instead and wait there, so the test can
kill it (or, for the S3 and database faults, break something and let it go on). Nothing is
faked: the job runs the real pipeline, and the pause sits between two of its real steps.

It wraps ``voxhelm.batch.transcribe.transcribe_media`` (the steps the server's pipeline and
``voxhelm-remote-worker`` share; both import it after this module ran) and, for a media file
named ``gate-<step>-<anything>``, pauses at ``<step>``:

* ``source``: the job's copy of its input is stored (object and, locally, its row);
* ``decoding``: the decoding checkpoint was written, decoding about to start;
* ``transcribing``: the transcription checkpoint was written, the engine about to run;
* ``prerender``: transcribed, nothing rendered yet (the next write is the first transcript);
* ``rendering``: the first transcript artifact is stored, the others are not;
* ``rendered``: every artifact is stored; the job is not yet marked succeeded (locally) or
  the completion not yet sent (remote worker).

Pausing writes ``<FAULT_GATE_DIR>/<file name>.reached`` (holding the pid) and waits until
``<file name>.release`` exists. A file pauses once: a later attempt sees ``.reached`` and
runs straight through.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

_DIR = os.environ.get("FAULT_GATE_DIR", "")


class _GatedSink:
    """The real sink of the run, with a pause at one step."""

    def __init__(self, inner: Any, step: str, gate: Path) -> None:
        self._inner = inner
        self._step = step
        self._gate = gate
        self._rendered = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def reach(self, step: str) -> None:
        if step != self._step or self._gate.with_suffix(".reached").exists():
            return
        temp = self._gate.with_suffix(".reaching")
        temp.write_text(str(os.getpid()))
        temp.replace(self._gate.with_suffix(".reached"))
        release = self._gate.with_suffix(".release")
        while not release.exists():
            time.sleep(0.02)

    def checkpoint(self, phase: str, percent: int, *args: Any, **kwargs: Any) -> None:
        self._inner.checkpoint(phase, percent, *args, **kwargs)
        if phase in ("decoding", "transcribing"):
            self.reach(phase)

    def put(self, artifact: Any, data: Any, **kwargs: Any) -> None:
        exposed = bool(artifact.exposed)
        if exposed and self._rendered == 0:
            self.reach("prerender")
        self._inner.put(artifact, data, **kwargs)
        if artifact.kind == "source":
            self.reach("source")
        if exposed:
            self._rendered += 1
            if self._rendered == 1:
                self.reach("rendering")


def _install(folder: Path) -> None:
    import voxhelm.batch.transcribe as core

    original = core.transcribe_media

    def gated(fetched: Any, plan: Any, sink: Any, *args: Any, **kwargs: Any) -> Any:
        filename = str(fetched.filename)
        parts = filename.split("-")
        if len(parts) < 3 or parts[0] != "gate":
            return original(fetched, plan, sink, *args, **kwargs)
        wrapped = _GatedSink(sink, parts[1], folder / Path(filename).stem)
        outcome = original(fetched, plan, wrapped, *args, **kwargs)
        wrapped.reach("rendered")
        return outcome

    core.transcribe_media = gated  # type: ignore[assignment]


if _DIR:
    _install(Path(_DIR))

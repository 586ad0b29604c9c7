"""Voxhelm: a self-hosted speech service."""

import os
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("voxhelm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

TELEMETRY_SWITCHES = {
    # onnxruntime (Silero VAD, Piper, the diarization embeddings): Microsoft's telemetry
    # writes a device id file into the temporary directory and keeps resolving and connecting
    # to a Microsoft host. Read only as onnxruntime initialises, on its import.
    "ORT_DISABLE_TELEMETRY": "1",
    # pyannote.audio 4 (the optional ``pyannote`` engine) reports every model load and run to
    # its makers' server. Read at each of those calls.
    "PYANNOTE_METRICS_ENABLED": "false",
}
"""Environment variables that turn off a dependency's telemetry, and their "off" value."""


def turn_off_telemetry() -> None:
    """Turn off every dependency's telemetry that the environment does not already set.

    Every way into Voxhelm (the console scripts, ``python -m``, the ASGI module, manage.py,
    library use) imports this package before any engine, so this is the one place early
    enough everywhere. An operator's own value is left alone.
    """
    unset = [name for name in TELEMETRY_SWITCHES if not os.environ.get(name)]
    for name in unset:
        os.environ[name] = TELEMETRY_SWITCHES[name]
    onnxruntime = sys.modules.get("onnxruntime")
    if "ORT_DISABLE_TELEMETRY" in unset and onnxruntime is not None:
        # The host program imported it first: the uploader already runs, and this call only
        # holds back events that are not essential.
        hold_back = getattr(onnxruntime, "disable_telemetry_events", None)
        if hold_back is not None:
            hold_back()
        warnings.warn(
            "onnxruntime was imported before voxhelm, so its telemetry is already running; "
            "set ORT_DISABLE_TELEMETRY=1 in the environment to turn it off",
            RuntimeWarning,
            stacklevel=2,
        )


turn_off_telemetry()

"""The Prometheus metrics every part of Voxhelm records (framework-free).

Metrics live in prometheus-client's default registry of the process. ``GET /metrics``
(:mod:`voxhelm.api.views.metrics`) exposes them together with values read at scrape time
(job states from the database, loaded models, inference threads in use).

Labels are kept to small, fixed sets (endpoint routes, backends, configured models, lanes,
outcomes): never a job id, producer, path or anything else a client can vary without bound.

Several processes (``voxhelm web`` beside ``voxhelm worker`` and ``voxhelm-wyoming-stt``)
each count on their own; prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``)
adds them up, see ``docs/operations.md``.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: from a cached 5 ms answer to a long synchronous transcription.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Processing time / audio time: below 1 is faster than realtime.
REALTIME_FACTOR_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5, 10)
# Seconds waited for a lane slot: none at all, a window of batch work, a 30 s timeout.
LANE_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
# Seconds a person waits for a voice command, from audio-stop to the transcript.
WYOMING_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
MODEL_LOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

http_requests = Counter(
    "voxhelm_http_requests",
    "HTTP requests answered, by endpoint route, method and status.",
    ["endpoint", "method", "status"],
)
http_request_duration = Histogram(
    "voxhelm_http_request_duration_seconds",
    "Time to answer an HTTP request (for streamed bodies, until the last byte).",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
stt_realtime_factor = Histogram(
    "voxhelm_stt_realtime_factor",
    "Engine processing time divided by audio duration, per engine call.",
    ["backend", "model"],
    buckets=REALTIME_FACTOR_BUCKETS,
)
stt_audio_seconds = Counter(
    "voxhelm_stt_audio_seconds",
    "Seconds of audio transcribed, per engine.",
    ["backend", "model"],
)
stt_streams_canceled = Counter(
    "voxhelm_stt_streams_canceled",
    "Streamed transcriptions stopped because the client went away.",
)
lane_wait = Histogram(
    "voxhelm_lane_wait_seconds",
    "Time spent waiting for an inference slot, per lane.",
    ["lane"],
    buckets=LANE_WAIT_BUCKETS,
)
lane_timeouts = Counter(
    "voxhelm_lane_timeouts",
    "Waits for an inference slot that ran out of time (answered as busy), per lane.",
    ["lane"],
)
wyoming_latency = Histogram(
    "voxhelm_wyoming_stt_latency_seconds",
    "Wyoming voice commands: time from audio-stop to the transcript, by outcome.",
    ["outcome"],
    buckets=WYOMING_BUCKETS,
)
model_loads = Counter(
    "voxhelm_model_loads",
    "STT models loaded into memory.",
    ["backend", "model"],
)
model_load_duration = Histogram(
    "voxhelm_model_load_seconds",
    "Time to load an STT model.",
    ["backend", "model"],
    buckets=MODEL_LOAD_BUCKETS,
)
model_unloads = Counter(
    "voxhelm_model_unloads",
    "STT models unloaded from memory, by reason (idle).",
    ["backend", "model", "reason"],
)
loop_repairs = Counter(
    "voxhelm_loop_repairs",
    "Degenerate transcript windows found by loop repair, by outcome.",
    ["outcome"],
)

model_pulls = Counter(
    "voxhelm_model_pulls",
    "Model pulls from the Hub that ended, by kind (fasterwhisper, ggml, piper) and outcome.",
    ["kind", "outcome"],
)
model_pull_bytes = Counter(
    "voxhelm_model_pull_bytes",
    "Bytes downloaded by model pulls, by kind.",
    ["kind"],
)


def observe_transcription(backend: str, model: str, audio_seconds: float, seconds: float) -> None:
    """Record one engine call: its realtime factor and the audio it covered."""
    stt_audio_seconds.labels(backend, model).inc(max(audio_seconds, 0.0))
    if audio_seconds > 0:
        stt_realtime_factor.labels(backend, model).observe(seconds / audio_seconds)

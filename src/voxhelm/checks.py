"""Django system checks: invalid settings and cross-setting rules, with IDs and hints.

``voxhelm serve``, ``web`` and ``worker`` run these first and refuse to start while any
error is reported; ``voxhelm check`` prints them.

IDs: voxhelm.E001 invalid value, E002 reserved label, E003 producer/worker token overlap,
E004 one worker token for several labels, E005-E007 remote_pull prerequisites, E020 the
metrics token is also a producer or worker token;
voxhelm.W001 no producer tokens, W002 default STT engine unavailable, W003 text-to-speech
cannot run or names a missing voice. W005 (a job type no process runs) reads the database:
``voxhelm.workers.topology``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from voxhelm import tts
from voxhelm.config import OPERATOR_PRODUCER_PREFIX, OPERATOR_UI_PRODUCER, REMOTE_EXECUTION, Config
from voxhelm.diarization.registry import diarizer
from voxhelm.stt.registry import ENGINES, resolve


def config_messages(config: Config) -> list[CheckMessage]:
    """Every problem with ``config``, as check messages (pure: no I/O)."""
    messages: list[CheckMessage] = [
        Error(
            f"{problem.name}: {problem.message}",
            hint="Fix the value in the environment (see docs/configuration.md).",
            id="voxhelm.E001",
        )
        for problem in config.problems
    ]
    auth = config.auth
    for name, tokens in (
        ("VOXHELM_BEARER_TOKENS", auth.bearer_tokens),
        ("VOXHELM_WORKER_TOKENS", auth.worker_tokens),
    ):
        reserved = sorted(
            label
            for label in tokens
            if label == OPERATOR_UI_PRODUCER or label.startswith(OPERATOR_PRODUCER_PREFIX)
        )
        if reserved:
            messages.append(
                Error(
                    f"{name} uses the reserved label {reserved[0]!r}.",
                    hint="Pick another label; this one is kept for console jobs.",
                    id="voxhelm.E002",
                )
            )
    shared = set(auth.bearer_tokens.values()) & set(auth.worker_tokens.values())
    if shared:
        labels = sorted(label for label, token in auth.worker_tokens.items() if token in shared)
        messages.append(
            Error(
                "VOXHELM_BEARER_TOKENS and VOXHELM_WORKER_TOKENS must not share bearer token "
                f"values (worker labels: {', '.join(labels)}).",
                hint="Give producers and workers different tokens; the two are separate domains.",
                id="voxhelm.E003",
            )
        )
    in_use = {*auth.bearer_tokens.values(), *auth.worker_tokens.values()}
    if auth.metrics_token and auth.metrics_token in in_use:
        messages.append(
            Error(
                "VOXHELM_METRICS_TOKEN is also a producer or worker token.",
                hint="Give the metrics scraper a token of its own: it opens /metrics only.",
                id="voxhelm.E020",
            )
        )
    worker_values = list(auth.worker_tokens.values())
    if len(worker_values) != len(set(worker_values)):
        messages.append(
            Error(
                "VOXHELM_WORKER_TOKENS maps one bearer token to multiple labels.",
                hint="Each worker needs its own token: the token identifies the worker.",
                id="voxhelm.E004",
            )
        )
    messages.extend(_remote_pull_messages(config))
    if not auth.bearer_tokens and not config.problems:
        messages.append(
            Warning(
                "No producer tokens are configured: every API request will be refused.",
                hint="Set VOXHELM_BEARER_TOKENS=label=token (voxhelm serve makes a dev token).",
                id="voxhelm.W001",
            )
        )
    return messages


def _remote_pull_messages(config: Config) -> list[CheckMessage]:
    execution = config.execution
    if execution.transcription_mode == REMOTE_EXECUTION:
        setting = "VOXHELM_TRANSCRIPTION_EXECUTION_MODE"
    elif execution.synthesis_mode == REMOTE_EXECUTION:
        setting = "VOXHELM_SYNTHESIS_EXECUTION_MODE"
    else:
        return []
    messages: list[CheckMessage] = []
    if not config.auth.worker_tokens:
        messages.append(
            Error(
                f"{setting}=remote_pull requires VOXHELM_WORKER_TOKENS.",
                hint="Set VOXHELM_WORKER_TOKENS=worker-id=token for each remote worker.",
                id="voxhelm.E005",
            )
        )
    artifacts = config.artifacts
    if artifacts.backend != "s3":
        messages.append(
            Error(
                "remote_pull requires VOXHELM_ARTIFACT_BACKEND to be one of: s3.",
                hint="Workers on other hosts upload artifacts to a shared S3-compatible store.",
                id="voxhelm.E006",
            )
        )
    missing = [
        name
        for name, value in (
            ("VOXHELM_ARTIFACT_S3_ENDPOINT_URL", artifacts.s3_endpoint_url),
            ("VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID", artifacts.s3_access_key_id),
            ("VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY", artifacts.s3_secret_access_key),
            ("VOXHELM_ARTIFACT_BUCKET", artifacts.bucket),
        )
        if not value
    ]
    if missing:
        messages.append(
            Error(
                f"remote_pull requires complete S3 artifact configuration: {', '.join(missing)}.",
                hint="Set every listed variable.",
                id="voxhelm.E007",
            )
        )
    return messages


def engine_messages(config: Config) -> list[CheckMessage]:
    """Warn when the default STT engine cannot run (missing model, binary or extra)."""
    return [
        Warning(
            f"STT backend {invocation.backend} is unavailable: {problem}",
            hint="Transcription requests will answer 503 until this is fixed.",
            id="voxhelm.W002",
        )
        for invocation in resolve("auto", config.stt)
        for problem in ENGINES.get(invocation, config.stt).check()
    ]


def tts_messages(config: Config) -> list[CheckMessage]:
    """Warn when speech synthesis cannot run, or a setting names a voice that is missing."""
    problems = tts.engine(config.tts).check()
    installed = set(tts.catalog(config.tts).names())
    named = [config.tts.piper_default_voice, *config.tts.piper_language_voices.values()]
    problems += [
        f"the voice {name!r} is not installed (VOXHELM_PIPER_DEFAULT_VOICE or "
        "VOXHELM_PIPER_LANGUAGE_VOICES)."
        for name in dict.fromkeys(named)
        if name and name not in installed
    ]
    return [
        Warning(
            f"Text-to-speech: {problem}",
            hint="Speech requests use the default voice or answer 503 until this is fixed.",
            id="voxhelm.W003",
        )
        for problem in problems
    ]


def diarization_messages(config: Config) -> list[CheckMessage]:
    """Warn when the configured diarization engine cannot run (missing extra, token, model)."""
    if config.diarization.backend == "none":
        return []
    return [
        Warning(
            f"Diarization backend {config.diarization.backend} is unavailable: {problem}",
            hint="Jobs that ask for diarization will fail until this is fixed.",
            id="voxhelm.W004",
        )
        for problem in diarizer(config.diarization).check()
    ]


@register("voxhelm")
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    config: Config = settings.VOXHELM
    messages = config_messages(config)
    if not config.problems:
        messages.extend(engine_messages(config))
        messages.extend(tts_messages(config))
        messages.extend(diarization_messages(config))
    return messages

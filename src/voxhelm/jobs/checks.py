"""System checks for batch jobs: heartbeat timing and a usable artifact store.

IDs: voxhelm.E010 stale threshold too close to the heartbeat interval; voxhelm.E011 the S3
store lacks its bucket or credentials; voxhelm.E012 the artifact store cannot be reached or
written (checked with real I/O: the folder is writable, the bucket answers to the
credentials), so wrong credentials stop ``serve``, ``worker`` and ``check`` at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from voxhelm.config import Config
from voxhelm.storage.base import StoreError
from voxhelm.storage.stores import active_store


def job_messages(config: Config) -> list[CheckMessage]:
    """Problems with the batch settings of ``config`` (pure: no I/O)."""
    messages: list[CheckMessage] = []
    execution = config.execution
    if execution.job_stale_seconds <= 2 * execution.job_heartbeat_seconds:
        messages.append(
            Error(
                "VOXHELM_JOB_STALE_SECONDS must be more than twice VOXHELM_JOB_HEARTBEAT_SECONDS.",
                hint="Otherwise one late heartbeat makes a healthy job look abandoned.",
                id="voxhelm.E010",
            )
        )
    artifacts = config.artifacts
    if artifacts.backend == "s3":
        missing = [
            name
            for name, value in (
                ("VOXHELM_ARTIFACT_BUCKET", artifacts.bucket),
                ("VOXHELM_ARTIFACT_S3_ACCESS_KEY_ID", artifacts.s3_access_key_id),
                ("VOXHELM_ARTIFACT_S3_SECRET_ACCESS_KEY", artifacts.s3_secret_access_key),
            )
            if not value
        ]
        if missing:
            messages.append(
                Error(
                    f"VOXHELM_ARTIFACT_BACKEND=s3 needs {', '.join(missing)}.",
                    hint="Set them (secrets may come from NAME_FILE), or use the filesystem store.",
                    id="voxhelm.E011",
                )
            )
    return messages


def store_messages(config: Config) -> list[CheckMessage]:
    """Whether the active artifact store works (real I/O: one request or one file)."""
    try:
        active_store(config.artifacts).check()
    except StoreError as exc:
        return [
            Error(
                f"The {config.artifacts.backend} artifact store is not usable: {exc}",
                hint="Batch jobs and staged uploads need it. Check the VOXHELM_ARTIFACT_* "
                "settings and that the store is running.",
                id="voxhelm.E012",
            )
        ]
    return []


@register("voxhelm")
def check_jobs(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    config: Config = settings.VOXHELM
    if config.problems:
        return []
    messages = job_messages(config)
    if not messages:
        messages = store_messages(config)
    return messages

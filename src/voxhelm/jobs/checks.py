"""System checks for batch jobs: heartbeat timing and a usable artifact store.

IDs: voxhelm.E010 stale threshold too close to the heartbeat interval; voxhelm.W010 the
configured artifact backend is not available in this build.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from voxhelm.config import Config


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
    if config.artifacts.backend != "filesystem":
        messages.append(
            Warning(
                f"VOXHELM_ARTIFACT_BACKEND={config.artifacts.backend} is not available in "
                "this build: batch jobs will fail.",
                hint="Use VOXHELM_ARTIFACT_BACKEND=filesystem until S3 support lands.",
                id="voxhelm.W010",
            )
        )
    return messages


@register("voxhelm")
def check_jobs(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    config: Config = settings.VOXHELM
    return [] if config.problems else job_messages(config)

"""The limits on what a worker may send, and the checks of ``voxhelm.worker_protocol.messages``.

A field over its limit is refused (a 400 naming the field and the limit), never cut short
and stored: the checks run while the request body is validated, before any lookup, so
nothing of a refused request reaches the database or the log. Names (hostname, capability
names, job ids, lease token, artifact fields, phase) must also be printable: no control,
format or line-separator characters. Free text (``error_detail``, a progress ``message``,
``result_text``) may hold any character; the text log escapes it
(``voxhelm.logformat``). Values of the wrong *type* are still dropped where the reference
dropped them (non-string capability names, a non-identifier ``error_code``). The table is
in docs/remote-workers.md ("Limits"); ``voxhelm-remote-worker`` keeps within them itself.
Framework-free.
"""

from __future__ import annotations

from pydantic_core import PydanticCustomError

MAX_WORKER_ID_CHARS = 64  # a token label (Worker.worker_id)
MAX_HOSTNAME_CHARS = 255  # Worker.hostname
MAX_CONCURRENCY = 1024  # concurrency and max_jobs (the claim tests run 500 at once)
MAX_RUNNING_JOBS = MAX_CONCURRENCY  # running_job_ids entries
MAX_JOB_ID_CHARS = 64  # one running_job_ids entry (a job id has 36)
MAX_NAMES = 64  # entries of each capabilities list
MAX_NAME_CHARS = 128  # one capability name (a backend, model, format, job type)
MAX_LEASE_TOKEN_CHARS = 128  # the server issues 43
MAX_PHASE_CHARS = 32  # progress.phase
MAX_PROGRESS_CHARS = 500  # progress.message
MAX_ERROR_CHARS = 2000  # error_detail
MAX_ERROR_CODE_CHARS = 64  # error_code (Job.error_code)
MAX_RESULT_TEXT_CHARS = 16 * 1024 * 1024  # a transcript of hundreds of hours
MAX_ARTIFACTS = 32  # manifest entries (a job writes at most 9)
# Manifest text fields: the columns of JobArtifact they are stored in.
MAX_ARTIFACT_CHARS = {
    "name": 255,
    "kind": 64,
    "format": 32,
    "storage_backend": 32,
    "storage_key": 1024,
    "content_type": 255,
}

_EXACT = "voxhelm_exact"  # = voxhelm.api.validation.EXACT_ERROR (that module imports Django)


def exact(message: str) -> PydanticCustomError:
    """A validation error whose message the client sees verbatim."""
    return PydanticCustomError(_EXACT, "{message}", {"message": message})


def bounded(value: str, field: str, limit: int) -> str:
    """``value`` if it has at most ``limit`` characters, else a 400 naming ``field``."""
    if len(value) > limit:
        raise exact(f"{field} must be at most {limit} characters.")
    return value


def name(value: str, field: str, limit: int) -> str:
    """A bounded ``value`` without control, format or separator characters."""
    bounded(value, field, limit)
    # isprintable() is False for every Cc, Cf (bidi overrides), Zl, Zp and Cs character.
    if not value.isprintable():
        raise exact(f"{field} must not contain control characters.")
    return value


def positive_int(value: object, field: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise exact(f"{field} must be a positive integer.")
    if value > limit:
        raise exact(f"{field} must be at most {limit}.")
    return value


def name_list(value: object, field: str) -> list[str]:
    """Trimmed non-blank names of a list, at most :data:`MAX_NAMES`; anything that is not a
    list counts as empty and non-string entries are dropped (as the reference did)."""
    if not isinstance(value, list):
        return []
    if len(value) > MAX_NAMES:
        raise exact(f"{field} must have at most {MAX_NAMES} entries.")
    items = (item.strip() for item in value if isinstance(item, str))
    return [name(item, field, MAX_NAME_CHARS) for item in items if item]


def lease_token(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise exact("lease_token must be a non-empty string.")
    return name(value.strip(), "lease_token", MAX_LEASE_TOKEN_CHARS)

"""Object keys of the artifact store: ``<prefix>/jobs/<job_id>/<name>``, never escaping it.

Keys are ``/``-separated relative paths. An empty prefix gives ``jobs/<job_id>/<name>``
(the reference produced ``/jobs/...``, an absolute path that escaped the filesystem root).
"""

from __future__ import annotations

from uuid import UUID

from voxhelm.storage.base import InvalidKey

MAX_KEY_LENGTH = 1024


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`InvalidKey`.

    Refused: empty keys, absolute keys, backslashes, NUL and other control characters,
    empty, ``.`` or ``..`` segments, and keys over :data:`MAX_KEY_LENGTH` characters.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey("Artifact keys must be 1 to 1024 characters long.")
    if key.startswith("/") or "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidKey("Artifact keys must be relative and printable.")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey("Artifact keys must not contain empty, '.' or '..' segments.")
    return key


def validate_name(name: str) -> str:
    """Return ``name`` if it is one safe key segment (an artifact file name)."""
    if "/" in name:
        raise InvalidKey("Artifact names must not contain '/'.")
    return validate_key(name)


def prefixed_key(prefix: str, *parts: str) -> str:
    """``<prefix>/<parts>...`` as a checked key; an empty prefix adds nothing."""
    segments = [segment for segment in prefix.strip("/").split("/") if segment]
    return validate_key("/".join([*segments, *parts]))


def job_prefix(prefix: str, job_id: UUID | str) -> str:
    """The folder of one job's artifacts: ``<prefix>/jobs/<job_id>``."""
    return prefixed_key(prefix, "jobs", str(UUID(str(job_id))))


def job_artifact_key(prefix: str, job_id: UUID | str, name: str) -> str:
    """The key of artifact ``name`` of job ``job_id``: ``<prefix>/jobs/<job_id>/<name>``."""
    return validate_key(f"{job_prefix(prefix, job_id)}/{validate_name(name)}")


def checkpoint_prefix(prefix: str, job_id: UUID | str) -> str:
    """The folder of one job's chunk checkpoints: ``<prefix>/checkpoints/<job_id>``.

    Beside the job's artifacts, not under them: a new attempt purges the artifacts of the
    one before but resumes from its checkpoints."""
    return prefixed_key(prefix, "checkpoints", str(UUID(str(job_id))))

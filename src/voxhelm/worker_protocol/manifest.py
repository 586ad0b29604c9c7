"""Validating a completion's artifact manifest: its shape against the job's request, and
every object against the leased store (exists, size, SHA-256 read back). Framework-free.

Each failure is an :class:`~voxhelm.errors.InvalidInput` (HTTP 400) with the reference's
message. The object checks read every byte back through ``open_verified``: the reference
compared sizes only, so a truncated or replaced object of the same size was accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voxhelm.batch.synthesize import speech_artifact
from voxhelm.config import ArtifactsConfig
from voxhelm.errors import InvalidInput
from voxhelm.formats import ARTIFACT_FORMATS
from voxhelm.storage.base import CHUNK_BYTES, IntegrityError, ObjectNotFound, StoreError
from voxhelm.storage.keys import validate_key
from voxhelm.storage.stores import store_for_identity
from voxhelm.worker_protocol.messages import (
    EXTRACTED_AUDIO_KIND,
    JSON_TYPE,
    SOURCE_KIND,
    SPEAKERS_FORMAT,
    SPEAKERS_KIND,
    SPEAKERS_NAME,
    ManifestArtifact,
)

TRANSCRIPT_KINDS = {spec.kind: key for key, spec in ARTIFACT_FORMATS.items()}
MEDIA_KINDS = (SOURCE_KIND, EXTRACTED_AUDIO_KIND)


@dataclass(frozen=True)
class Lease:
    """What the manifest is checked against: the job's request and its attempt's lease."""

    formats: tuple[str, ...]
    known_speakers: bool
    prefix: str  # ends with "/"
    store: Mapping[str, Any]  # identity snapshot taken at claim time
    speech: bool = False  # a synthesis job: ``formats`` are audio formats


def check_speech(artifacts: Sequence[ManifestArtifact], lease: Lease) -> None:
    """A synthesis job's manifest: exactly one ``speech.<format>`` per requested format, each
    as the server would have stored it (kind, format, MIME type, exposed); raises 400."""
    expected = {speech_artifact(fmt).name: speech_artifact(fmt) for fmt in lease.formats}
    seen: set[str] = set()
    for artifact in artifacts:
        wanted = expected.get(artifact.name)
        if wanted is None:
            raise _invalid(f"Unexpected artifact '{artifact.name}' for a synthesis job.")
        if artifact.name in seen:
            raise _invalid(f"Duplicate artifact name '{artifact.name}'.")
        seen.add(artifact.name)
        if (artifact.kind, artifact.format) != (wanted.kind, wanted.format):
            raise _invalid(f"Artifact {artifact.name} does not match its audio format.")
        if artifact.content_type != wanted.content_type:
            raise _invalid(f"Artifact {artifact.name} content_type must be {wanted.content_type}.")
        if not artifact.exposed:
            raise _invalid(f"Artifact {artifact.name} must be exposed.")
        if artifact.storage_backend != lease.store.get("backend"):
            raise _invalid("Artifact storage_backend does not match Voxhelm configuration.")
        _check_key(artifact.storage_key, lease.prefix)
    missing = [fmt for fmt, name in zip(lease.formats, expected, strict=True) if name not in seen]
    if missing:
        raise _invalid(f"Missing speech artifact format(s): {', '.join(missing)}.")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, param="artifacts", code="invalid_manifest")


def check_structure(artifacts: Sequence[ManifestArtifact], lease: Lease) -> None:
    """Check names, kinds, formats, types, exposure, keys and completeness; raises 400."""
    if lease.speech:
        check_speech(artifacts, lease)
        return
    seen: set[str] = set()
    formats: list[str] = []
    sources = 0
    sidecar = False
    for artifact in artifacts:
        _check_entry(artifact, lease)
        if artifact.name in seen:
            raise _invalid(f"Duplicate artifact name '{artifact.name}'.")
        seen.add(artifact.name)
        if artifact.kind in TRANSCRIPT_KINDS:
            formats.append(artifact.format)
        sources += artifact.kind == SOURCE_KIND
        sidecar = sidecar or artifact.kind == SPEAKERS_KIND
    if not sources:
        raise _invalid("Remote completions must include a source artifact.")
    missing = [key for key in lease.formats if key not in formats]
    if missing:
        raise _invalid(f"Missing transcript artifact format(s): {', '.join(missing)}.")
    unexpected = [key for key in formats if key not in lease.formats]
    if unexpected:
        raise _invalid(f"Unexpected transcript artifact format(s): {', '.join(unexpected)}.")
    if lease.known_speakers and not sidecar:
        raise _invalid(f"Known-speaker jobs must include {SPEAKERS_NAME}.")
    if sidecar and not lease.known_speakers:
        raise _invalid("Speaker sidecar artifacts are only allowed for known-speaker jobs.")


def _check_entry(artifact: ManifestArtifact, lease: Lease) -> None:
    name, kind, fmt = artifact.name, artifact.kind, artifact.format
    if "/" in name or "\\" in name or name in (".", ".."):
        raise _invalid("Artifact names must be simple file names.")
    if kind not in TRANSCRIPT_KINDS and kind not in (*MEDIA_KINDS, SPEAKERS_KIND):
        raise _invalid(f"Unsupported remote artifact kind '{kind}'.")
    expected_type = None
    if kind in TRANSCRIPT_KINDS:
        spec = ARTIFACT_FORMATS[TRANSCRIPT_KINDS[kind]]
        if name != spec.name or fmt != TRANSCRIPT_KINDS[kind]:
            raise _invalid(f"Artifact {name} does not match its transcript format.")
        expected_type = spec.content_type
    elif kind == SPEAKERS_KIND:
        if name != SPEAKERS_NAME or fmt != SPEAKERS_FORMAT:
            raise _invalid(
                f"Speaker sidecar artifacts must be named {SPEAKERS_NAME} "
                f"with format {SPEAKERS_FORMAT}."
            )
        expected_type = JSON_TYPE
    elif fmt in ARTIFACT_FORMATS or fmt == SPEAKERS_FORMAT:
        raise _invalid(f"Artifact format '{fmt}' does not match kind '{kind}'.")
    if artifact.storage_backend != lease.store.get("backend"):
        raise _invalid("Artifact storage_backend does not match Voxhelm configuration.")
    _check_key(artifact.storage_key, lease.prefix)
    if expected_type is not None and artifact.content_type != expected_type:
        raise _invalid(f"Artifact {name} content_type must be {expected_type}.")
    if kind in MEDIA_KINDS and artifact.exposed:
        raise _invalid(f"Artifact {name} must not be exposed.")
    if kind not in MEDIA_KINDS and not artifact.exposed:
        raise _invalid(f"Artifact {name} must be exposed.")


def _check_key(key: str, prefix: str) -> None:
    outside = _invalid("Artifact storage_key must be under the claimed attempt prefix.")
    if not key.startswith(prefix) or len(key) <= len(prefix):
        raise outside
    try:
        validate_key(key)
    except StoreError:
        raise outside from None


def check_objects(
    artifacts: Sequence[ManifestArtifact], lease: Lease, config: ArtifactsConfig
) -> None:
    """Read every object back from the leased store: it must exist with the manifest's size
    and SHA-256. Run outside any database transaction (a slow store must not hold locks)."""
    try:
        store = store_for_identity(lease.store, config)
    except StoreError as exc:
        raise _invalid(f"Artifact store is not configured: {exc}") from None
    for artifact in artifacts:
        name = artifact.name
        try:
            if store.stat(artifact.storage_key) != artifact.size_bytes:
                raise _invalid(f"Artifact object '{name}' size_bytes does not match the manifest.")
            with store.open_verified(
                artifact.storage_key, artifact.sha256, artifact.size_bytes
            ) as stream:
                while stream.read(CHUNK_BYTES):
                    pass
        except ObjectNotFound:
            raise _invalid(
                f"Artifact object '{name}' is not available in the artifact store."
            ) from None
        except IntegrityError:
            raise _invalid(
                f"Artifact object '{name}' sha256 does not match the manifest."
            ) from None
        except StoreError:
            raise _invalid(
                f"Artifact object '{name}' could not be read from the artifact store."
            ) from None


def normalized(artifacts: Sequence[ManifestArtifact]) -> list[dict[str, Any]]:
    """The manifest as comparable plain data, sorted by name (for completion retries)."""
    return sorted((a.model_dump() for a in artifacts), key=lambda entry: str(entry["name"]))

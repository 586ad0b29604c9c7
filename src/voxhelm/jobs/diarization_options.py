"""The ``diarization`` object of a transcription job: validation with the reference's messages
into a :class:`~voxhelm.batch.request.DiarizationRequest` (which owns the stored form).

``strategy: "pyannote"`` (anonymous, the default) is never stored, so an explicit ``pyannote``
equals an omitted strategy.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Container
from typing import Any, Literal, TypeGuard
from urllib.parse import urlsplit

from django.conf import settings
from pydantic import BaseModel, Field

from voxhelm.api.validation import exact
from voxhelm.batch.inputs import batch_fetch_policy
from voxhelm.batch.request import (
    DiarizationRequest,
    KnownSpeaker,
    Reference,
    ReferenceAudio,
)
from voxhelm.diarization.base import ANONYMOUS_STRATEGY, COUNTS, KNOWN_STRATEGY
from voxhelm.diarization.embedding import MODEL_NAME as EMBEDDING_MODEL
from voxhelm.diarization.registry import NOT_CONFIGURED
from voxhelm.fetch import UrlNotAllowed, check_url

STRATEGIES = (ANONYMOUS_STRATEGY, KNOWN_STRATEGY)
MATCH_NUMBERS = ("min_segment_duration", "auto_accept_margin", "min_top_similarity")
MATCH_OPTIONS = ("embedding_model", "label_transcript", *MATCH_NUMBERS)


# The documented shape (its docstring is the OpenAPI description); validate_diarization
# parses the value itself, into a DiarizationRequest.
class Diarization(BaseModel):
    """Speaker labels for the transcript (``VOXHELM_DIARIZATION_BACKEND`` must not be none).

    Anonymous: segments get ``Speaker 1``, ``Speaker 2``… (whoever speaks first is 1) in
    json, dote, podlove, vtt (voice tags) and srt. ``strategy: "pyannote_known_speaker"``
    with ``known_speakers`` matches voices to reference clips or to saved voices of the
    speaker library (``{"library": "Anna"}``) instead, and reports the suggestions in the
    ``transcript.speakers.json`` sidecar; with a library voice (or
    ``known_speaker.label_transcript``) the transcripts carry the names too.
    """

    enabled: bool = False
    num_speakers: int | None = Field(default=None, ge=1, description="Exact speaker count.")
    min_speakers: int | None = Field(default=None, ge=1)
    max_speakers: int | None = Field(default=None, ge=1)
    strategy: Literal["pyannote", "pyannote_known_speaker"] | None = None
    known_speakers: list[dict[str, Any]] | None = Field(
        default=None,
        description='[{"id", "name", "references": [{"kind": "clip_artifact"|"source_range", '
        '"audio": {"kind": "url", "url"} | {"kind": "upload", "upload_id"}, '
        '"start"?, "end"?}]} | {"library": "<a name of GET /v1/speakers>", "id"?, "name"?}]',
    )
    known_speaker: dict[str, Any] | None = Field(
        default=None,
        description="embedding_model, min_segment_duration, auto_accept_margin, "
        "min_top_similarity, label_transcript (name the transcript's segments too; the "
        "default when a library voice is used).",
    )


def validate_diarization(value: object) -> DiarizationRequest:
    """:func:`normalize_diarization` under the server's settings, with every reference URL
    checked against the URL allowlist (a 400 at submission, as the reference)."""
    config = settings.VOXHELM
    request = normalize_diarization(value, backend=config.diarization.backend)
    policy = batch_fetch_policy(config)
    for url in request.reference_urls():
        try:
            check_url(url, policy)
        except UrlNotAllowed as exc:
            raise exact(f"Known-speaker reference audio: {exc.message}") from None
    return request


def normalize_diarization(value: object, *, backend: str) -> DiarizationRequest:
    """The request's ``diarization`` value, parsed; raises ``exact`` 400 errors.

    ``backend`` is ``VOXHELM_DIARIZATION_BACKEND``: with ``none`` an enabled request is
    refused here rather than failing later.
    """
    if value is None:
        return DiarizationRequest()
    if not isinstance(value, dict):
        raise exact("diarization must be an object.")
    unknown = sorted(set(value) - set(Diarization.model_fields))
    if unknown:
        raise exact(f"Unsupported diarization option: {', '.join(unknown)}.")
    if "enabled" not in value:
        raise exact("diarization.enabled must be provided when diarization is set.")
    if not isinstance(value["enabled"], bool):
        raise exact("diarization.enabled must be a boolean.")
    if not value["enabled"]:
        if len(value) > 1:
            raise exact("diarization options require diarization.enabled=true.")
        return DiarizationRequest()
    request = DiarizationRequest(True, **_counts(value), **_known_strategy(value))
    if backend == "none":
        raise exact(NOT_CONFIGURED)
    return request


def _known_strategy(value: dict[str, Any]) -> dict[str, Any]:
    if _strategy(value.get("strategy")) != KNOWN_STRATEGY:
        for key in ("known_speakers", "known_speaker"):
            if key in value:
                raise exact(f"diarization.{key} require strategy={KNOWN_STRATEGY}.")
        return {}
    return {
        "strategy": KNOWN_STRATEGY,
        "known_speakers": _known_speakers(value.get("known_speakers")),
        "match": _match_options(value.get("known_speaker")),
    }


def _counts(value: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for key in (key for key in COUNTS if key in value):
        count = value[key]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise exact(f"diarization.{key} must be a positive integer.")
        counts[key] = count
    if "num_speakers" in counts and ("min_speakers" in counts or "max_speakers" in counts):
        raise exact(
            "diarization.num_speakers cannot be combined with min_speakers or max_speakers."
        )
    if counts.get("min_speakers", 0) > counts.get("max_speakers", math.inf):
        raise exact(
            "diarization.min_speakers must be less than or equal to diarization.max_speakers."
        )
    return counts


def _strategy(value: object) -> str:
    if value is None:
        return ANONYMOUS_STRATEGY
    if not isinstance(value, str):
        raise exact("diarization.strategy must be a string.")
    if value.strip() not in STRATEGIES:
        raise exact(
            "Unsupported diarization.strategy. Accepted values: pyannote, pyannote_known_speaker."
        )
    return value.strip()


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise exact(f"{field} must be a non-empty string.")
    return value.strip()


def _non_negative(value: object) -> TypeGuard[int | float]:
    """A finite number at least 0 (a boolean is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0


def _known_speakers(value: object) -> tuple[KnownSpeaker, ...]:
    if not isinstance(value, list) or not value:
        raise exact("diarization.known_speakers must be a non-empty list.")
    speakers: dict[str, KnownSpeaker] = {}
    for entry in value:
        if not isinstance(entry, dict):
            raise exact("diarization.known_speakers entries must be objects.")
        speaker = _library_speaker(entry) if "library" in entry else _speaker(entry, speakers)
        if speaker.id in speakers:
            raise exact(f"Duplicate diarization.known_speakers id '{speaker.id}'.")
        speakers[speaker.id] = speaker
    return tuple(speakers.values())


def _speaker(entry: dict[str, Any], earlier: Container[str]) -> KnownSpeaker:
    speaker_id = _text(entry.get("id"), "diarization.known_speakers[].id")
    if speaker_id in earlier:  # a repeated id is reported before a bad name
        raise exact(f"Duplicate diarization.known_speakers id '{speaker_id}'.")
    name = _text(entry.get("name"), "diarization.known_speakers[].name")
    references = entry.get("references")
    if not isinstance(references, list) or not references:
        raise exact("diarization.known_speakers[].references must be a non-empty list.")
    return KnownSpeaker(speaker_id, name, tuple(_reference(r) for r in references))


def _library_speaker(entry: dict[str, Any]) -> KnownSpeaker:
    """``{"library": "Anna"}``: a voice of the producer's speaker library, by its name (the
    voiceprint is looked up at submission, see :mod:`voxhelm.jobs.voiceprints`); ``id`` and
    ``name`` default to the library name."""
    unknown = sorted(set(entry) - {"library", "id", "name"})
    if unknown:
        raise exact(
            f"A library known speaker takes only library, id and name (not {', '.join(unknown)})."
        )
    library = _text(entry["library"], "diarization.known_speakers[].library")
    speaker_id = _text(entry.get("id", library), "diarization.known_speakers[].id")
    name = _text(entry.get("name", library), "diarization.known_speakers[].name")
    return KnownSpeaker(speaker_id, name, (), library=library)


def _reference(value: object) -> Reference:
    if not isinstance(value, dict):
        raise exact("A known-speaker reference must be an object.")
    kind = value.get("kind")
    if kind not in ("clip_artifact", "source_range"):
        raise exact("A known-speaker reference kind must be 'clip_artifact' or 'source_range'.")
    audio = _reference_audio(value.get("audio"))
    if kind != "source_range":
        return Reference(kind, audio)
    start, end = value.get("start"), value.get("end")
    if not (_non_negative(start) and _non_negative(end)):
        raise exact("A source_range reference needs non-negative numbers start and end.")
    if start >= end:
        raise exact("A source_range reference needs start before end.")
    return Reference(kind, audio, float(start), float(end))


def _reference_audio(value: object) -> ReferenceAudio:
    """A reference's audio: an absolute URL, or a staged upload's id (checked against the
    producer's uploads at submission, see :mod:`voxhelm.jobs.reference_uploads`)."""
    if not isinstance(value, dict):
        raise exact("A known-speaker reference needs an audio object.")
    kind = value.get("kind")
    if kind == "url":
        url = value.get("url")
        url = url.strip() if isinstance(url, str) else ""
        try:  # urlsplit's own message (e.g. for "http://[name]/") is not for clients
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or not parts.scheme or not parts.netloc:
            raise exact("A known-speaker reference audio.url must be an absolute URL.")
        return ReferenceAudio("url", url=url)
    if kind == "upload":
        upload_id = value.get("upload_id")
        try:
            if not isinstance(upload_id, str):
                raise ValueError(upload_id)
            return ReferenceAudio("upload", upload_id=str(uuid.UUID(upload_id.strip())))
        except ValueError:
            raise exact(
                "A known-speaker reference audio.upload_id must be a UUID string."
            ) from None
    raise exact("reference audio.kind must be 'url' or 'upload'.")


def _match_options(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exact("diarization.known_speaker must be an object.")
    unknown = sorted(set(value) - set(MATCH_OPTIONS))
    if unknown:
        raise exact(f"Unsupported diarization.known_speaker option: {', '.join(unknown)}.")
    options: dict[str, Any] = {}
    if "label_transcript" in value:
        if not isinstance(value["label_transcript"], bool):
            raise exact("diarization.known_speaker.label_transcript must be a boolean.")
        options["label_transcript"] = value["label_transcript"]
    if "embedding_model" in value:
        model = _text(value["embedding_model"], "diarization.known_speaker.embedding_model")
        if model != EMBEDDING_MODEL:
            raise exact(
                f"Unsupported diarization.known_speaker.embedding_model '{model}'. "
                f"Accepted values: {EMBEDDING_MODEL}."
            )
        options["embedding_model"] = model
    for key in (key for key in MATCH_NUMBERS if key in value):
        if not _non_negative(value[key]):
            raise exact(f"diarization.known_speaker.{key} must be a non-negative number.")
        options[key] = float(value[key])
    return options

"""One job's request, typed: parsed once at submission, read through attributes everywhere.

A ``Job`` row stores it as ``input_data`` and ``output_data`` JSON; ``from_stored`` and
``to_stored`` here are the only code that knows that form, and keep it exactly (key order,
omitted keys), so rows written before the type existed read and write the same:

* ``input_data``: ``{"kind": "url", "url"}``, or an upload ``{"kind": "upload", ...}`` with
  ``upload_id`` (the producer's form, until submission attaches the upload), then also
  ``filename``, ``content_type`` and ``size_bytes``; a sync console run stores ``filename``
  and ``content_type`` alone (its file was never staged);
* ``output_data``: ``{"formats": [...], "diarization": {...}}`` (rows from before
  diarization may lack either key); synthesis: ``{"formats", "voice", "speed"}``;
* ``diarization``: ``enabled``, the given count hints, then for known speakers ``strategy``,
  ``known_speakers`` and ``known_speaker`` (when any option was given). The anonymous
  strategy is never stored; a claim (:meth:`DiarizationRequest.to_claim`) names it.

Reference audio of a known speaker is a URL, a staged upload as the producer named it, or
(after submission) that upload's object in the artifact store (``kind: "stored"``); only a
worker ever sees the stored form, job metadata shows none (:meth:`DiarizationRequest.public`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, Self

from voxhelm.diarization.base import ANONYMOUS_STRATEGY, COUNTS, KNOWN_STRATEGY


@dataclass(frozen=True)
class UrlSource:
    """Media to fetch through the guarded fetcher."""

    kind: ClassVar[Literal["url"]] = "url"
    url: str

    def to_stored(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url}


@dataclass(frozen=True)
class UploadSource:
    """A staged upload; each field is stored only when known (not None)."""

    kind: ClassVar[Literal["upload"]] = "upload"
    upload_id: str | None = None
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None

    def to_stored(self) -> dict[str, Any]:
        known = {name: value for name, value in asdict(self).items() if value is not None}
        return {"kind": self.kind, **known}


def source_from_stored(data: Mapping[str, Any]) -> UrlSource | UploadSource:
    """The input of a stored transcription job (a row without one reads as an empty URL)."""
    if data.get("kind") == UploadSource.kind:
        return UploadSource(**{known.name: data.get(known.name) for known in fields(UploadSource)})
    return UrlSource(str(data.get("url", "")))


@dataclass(frozen=True)
class ReferenceAudio:
    """Where a reference clip is: ``url``, ``upload`` (an ``upload_id``) or ``stored`` (the
    upload's object: key, store identity, SHA-256 and size)."""

    kind: Literal["url", "upload", "stored"]
    url: str = ""
    upload_id: str = ""
    storage_key: str = ""
    storage_identity: Mapping[str, Any] = field(default_factory=dict)
    sha256: str = ""
    size_bytes: int = 0

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)

    def to_stored(self) -> dict[str, Any]:
        if self.kind == "url":
            return {"kind": "url", "url": self.url}
        if self.kind == "upload":
            return {"kind": "upload", "upload_id": self.upload_id}
        stored = asdict(self)
        del stored["url"]  # a stored upload: every field but the URL
        return stored


@dataclass(frozen=True)
class Reference:
    """A known speaker's clip: the whole audio, or ``start``-``end`` seconds of it."""

    kind: Literal["clip_artifact", "source_range"]
    audio: ReferenceAudio
    start: float | None = None
    end: float | None = None

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        audio = ReferenceAudio.from_stored(data["audio"])
        return cls(data["kind"], audio, data.get("start"), data.get("end"))

    def to_stored(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"kind": self.kind, "audio": self.audio.to_stored()}
        if self.start is not None:  # a source_range
            stored.update(start=self.start, end=self.end)
        return stored


@dataclass(frozen=True)
class KnownSpeaker:
    """A name and its reference clips, or a voice of the producer's speaker library:
    ``library`` names it, and after submission ``voiceprint`` (the saved unit vector) and
    ``embedding_version`` carry it, so a worker needs no database."""

    id: str
    name: str
    references: tuple[Reference, ...]
    library: str = ""
    voiceprint: tuple[float, ...] = ()
    embedding_version: str = ""

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        references = tuple(Reference.from_stored(r) for r in data.get("references", ()))
        return cls(
            data["id"],
            data["name"],
            references,
            str(data.get("library") or ""),
            tuple(float(x) for x in data.get("voiceprint", ())),
            str(data.get("embedding_version") or ""),
        )

    def to_stored(self) -> dict[str, Any]:
        if self.library:  # a library voice (rows before the library read as before)
            stored: dict[str, Any] = {"id": self.id, "name": self.name, "library": self.library}
            if self.voiceprint:
                stored["voiceprint"] = list(self.voiceprint)
                stored["embedding_version"] = self.embedding_version
            return stored
        references = [reference.to_stored() for reference in self.references]
        return {"id": self.id, "name": self.name, "references": references}


@dataclass(frozen=True)
class DiarizationRequest:
    """Speaker labels (anonymous), or names matched to reference clips (known speakers)."""

    enabled: bool = False
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    strategy: str = ANONYMOUS_STRATEGY
    known_speakers: tuple[KnownSpeaker, ...] = ()
    match: Mapping[str, Any] = field(default_factory=dict)  # the ``known_speaker`` options

    @property
    def known(self) -> bool:
        return self.enabled and self.strategy == KNOWN_STRATEGY

    @property
    def wants_word_timestamps(self) -> bool:
        """Both modes cut segments at the word boundary nearest a speaker change (and word
        timings start a segment at its first word, not at the window's start)."""
        return self.enabled

    @property
    def names(self) -> list[str]:
        return [speaker.name for speaker in self.known_speakers]

    @property
    def labels_transcript(self) -> bool:
        """Known speakers name the transcript's segments themselves (not only the sidecar)
        when asked (``known_speaker.label_transcript``), by default when a library voice is
        among them."""
        default = any(speaker.library for speaker in self.known_speakers)
        return bool(self.match.get("label_transcript", default))

    def counts(self) -> dict[str, int]:
        """The given count hints, by their stored names."""
        given = zip(COUNTS, (self.num_speakers, self.min_speakers, self.max_speakers), strict=True)
        return {name: value for name, value in given if value is not None}

    def reference_urls(self) -> list[str]:
        """Every reference URL (for the allowlist check)."""
        return [
            reference.audio.url
            for speaker in self.known_speakers
            for reference in speaker.references
            if reference.audio.kind == "url"
        ]

    def public(self, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What job metadata shows: the request without reference audio, and for known
        speakers the sidecar's ``summary`` (when given)."""
        shown = self.to_stored()
        if "known_speakers" in shown:
            shown["known_speakers"] = [
                {"id": s.id, "name": s.name, "library": s.library}
                if s.library
                else {"id": s.id, "name": s.name, "reference_count": len(s.references)}
                for s in self.known_speakers
            ]
        if summary is not None:
            shown["known_speaker_summary"] = summary
        return shown

    @classmethod
    def from_stored(cls, data: Mapping[str, Any] | None) -> Self:
        """The stored form, or a claim's (whose strategy is explicit); None: not asked for."""
        if not data:
            return cls()
        return cls(
            enabled=bool(data.get("enabled")),
            **{count: data.get(count) for count in COUNTS},
            strategy=str(data.get("strategy") or ANONYMOUS_STRATEGY),
            known_speakers=tuple(
                KnownSpeaker.from_stored(s) for s in data.get("known_speakers", ())
            ),
            match=dict(data.get("known_speaker") or {}),
        )

    def to_stored(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"enabled": self.enabled, **self.counts()}
        if self.strategy == KNOWN_STRATEGY:
            stored["strategy"] = KNOWN_STRATEGY
            stored["known_speakers"] = [speaker.to_stored() for speaker in self.known_speakers]
            if self.match:
                stored["known_speaker"] = dict(self.match)
        return stored

    def to_claim(self) -> dict[str, Any]:
        """The form a worker's claim carries: the strategy explicit when enabled."""
        claim = self.to_stored()
        if self.enabled:
            claim.setdefault("strategy", self.strategy)
        return claim


@dataclass(frozen=True)
class JobOutputs:
    """What a transcription produces: the formats, in order, and the diarization."""

    formats: tuple[str, ...] = ()
    diarization: DiarizationRequest = field(default_factory=DiarizationRequest)
    missing: frozenset[str] = frozenset()  # keys an old row lacks; to_stored leaves them out

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            tuple(data.get("formats", ())),
            DiarizationRequest.from_stored(data.get("diarization")),
            frozenset({"formats", "diarization"} - set(data)),
        )

    def to_stored(self) -> dict[str, Any]:
        stored = {"formats": list(self.formats), "diarization": self.diarization.to_stored()}
        return {key: value for key, value in stored.items() if key not in self.missing}


@dataclass(frozen=True)
class JobRequest:
    """A transcription job's request. ``model`` is an alias on the server (resolved when the
    job runs) and the concrete model on a remote worker (resolved at claim)."""

    source: UrlSource | UploadSource
    outputs: JobOutputs
    model: str = "auto"
    language: str | None = None
    prompt: str | None = None
    callback_url: str = ""

    def fingerprint_fields(self, job_type: str, backend: str) -> dict[str, Any]:
        """The result-affecting fields that task_ref idempotency compares (as submitted)."""
        return {
            "job_type": job_type,
            "backend": backend,
            "model": self.model,
            "language": self.language or "",
            "input": self.source.to_stored(),
            "formats": sorted(self.outputs.formats),
            "diarization": self.outputs.diarization.to_stored(),
        }


@dataclass(frozen=True)
class SynthesisRequest:
    """A synthesis job's request: the text, the resolved voice, speed and audio formats."""

    text: str
    voice: str | None = None
    speed: float = 1.0
    formats: tuple[str, ...] = ()

    @classmethod
    def from_stored(cls, input_data: Mapping[str, Any], output_data: Mapping[str, Any]) -> Self:
        voice = output_data.get("voice") or None
        speed = output_data.get("speed", 1.0)
        return cls(str(input_data["text"]), voice, speed, tuple(output_data["formats"]))

    def input_data(self) -> dict[str, Any]:
        return {"kind": "text", "text": self.text}

    def output_data(self) -> dict[str, Any]:
        return {"formats": list(self.formats), "voice": self.voice, "speed": self.speed}

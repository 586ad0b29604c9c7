"""Every output format rendered from a ``Transcript``: registry, sync bodies, batch artifacts.

Renderers are pure functions of a :class:`~voxhelm.transcript.Transcript`; nothing here
knows HTTP or Django. Sync responses use :func:`render`; batch jobs use
:data:`ARTIFACT_FORMATS` and :func:`render_artifact`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from voxhelm.errors import InvalidInput
from voxhelm.formats.openai_json import (
    render_diarized_json,
    render_json,
    render_transcript_json,
    render_verbose_json,
)
from voxhelm.formats.podcast import render_dote, render_podlove
from voxhelm.formats.subtitles import render_srt, render_vtt
from voxhelm.formats.text import render_text
from voxhelm.transcript import Transcript

__all__ = [
    "ARTIFACT_FORMATS",
    "FORMATS",
    "RESPONSE_FORMATS",
    "ArtifactFormat",
    "FormatInfo",
    "RenderedFormat",
    "UnsupportedFormat",
    "normalize_format_key",
    "render",
    "render_artifact",
]

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
VTT = "text/vtt; charset=utf-8"
SRT = "application/x-subrip; charset=utf-8"


class UnsupportedFormat(InvalidInput):
    """A format name that no renderer (or no artifact) answers to."""

    code = "unsupported_format"


@dataclass(frozen=True)
class RenderedFormat:
    """A rendered body and the ``Content-Type`` it is served with."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class FormatInfo:
    """One output format: its name, content type, renderer and, for batch, its artifact.

    ``batch_key`` is the key in a job's ``output.formats`` (``json`` means the
    ``transcript_json`` artifact) and ``artifact_name`` the file it is stored as; formats
    without them are sync-only.
    """

    name: str
    content_type: str
    renderer: Callable[[Transcript, bool], bytes]
    batch_key: str | None = None
    artifact_name: str | None = None

    @property
    def artifact_kind(self) -> str | None:
        """Every artifact's kind is its key's: ``transcript_text``, ``transcript_json``, ..."""
        return f"transcript_{self.batch_key}" if self.batch_key else None


class ArtifactFormat(NamedTuple):
    """How a batch format key is stored: artifact file name, artifact kind, content type."""

    name: str
    kind: str
    content_type: str


def _plain(renderer: Callable[[Transcript], bytes]) -> Callable[[Transcript, bool], bytes]:
    """Adapt a renderer that has no place for word timestamps to the registry's signature."""
    return lambda transcript, _words: renderer(transcript)


_INFOS = (
    FormatInfo("json", JSON, _plain(render_json)),
    FormatInfo("text", TEXT, _plain(render_text), "text", "transcript.txt"),
    FormatInfo("verbose_json", JSON, render_verbose_json),
    FormatInfo("diarized_json", JSON, _plain(render_diarized_json)),
    FormatInfo("transcript_json", JSON, _plain(render_transcript_json), "json", "transcript.json"),
    FormatInfo("vtt", VTT, _plain(render_vtt), "vtt", "transcript.vtt"),
    FormatInfo("srt", SRT, _plain(render_srt), "srt", "transcript.srt"),
    FormatInfo("dote", JSON, _plain(render_dote), "dote", "transcript.dote.json"),
    FormatInfo("podlove", JSON, _plain(render_podlove), "podlove", "transcript.podlove.json"),
)

FORMATS: Mapping[str, FormatInfo] = MappingProxyType({info.name: info for info in _INFOS})
"""Every renderable format by name."""

_ARTIFACT_INFOS: Mapping[str, FormatInfo] = MappingProxyType(
    {info.batch_key: info for info in _INFOS if info.batch_key is not None}
)

ARTIFACT_FORMATS: Mapping[str, ArtifactFormat] = MappingProxyType(
    {
        key: ArtifactFormat(str(info.artifact_name), str(info.artifact_kind), info.content_type)
        for key, info in _ARTIFACT_INFOS.items()
    }
)
"""Batch format key (``text json vtt srt dote podlove``) → artifact name, kind, content type."""

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
"""The formats a sync transcription may ask for (OpenAI's ``response_format`` values)."""

_ALIASES = {"webvtt": "vtt"}


def normalize_format_key(key: str) -> str:
    """A batch format key as the reference reads it: stripped, lowercased, ``webvtt`` → ``vtt``.

    Only normalizes; whether the key is known is for the caller to check against
    :data:`ARTIFACT_FORMATS`.
    """
    key = key.strip().lower()
    return _ALIASES.get(key, key)


def render(transcript: Transcript, fmt: str, *, words: bool = False) -> RenderedFormat:
    """Render ``transcript`` in the format named ``fmt`` (a key of :data:`FORMATS`).

    ``words`` adds word timestamps where the format has a place for them (``verbose_json``).
    Raises :class:`UnsupportedFormat` for an unknown name.
    """
    info = FORMATS.get(fmt)
    if info is None:
        raise UnsupportedFormat(f"Unsupported format {fmt!r}.", param="response_format")
    return RenderedFormat(body=info.renderer(transcript, words), content_type=info.content_type)


def render_artifact(transcript: Transcript, key: str) -> bytes:
    """The batch artifact body for format key ``key`` (normalized first, so ``webvtt`` works).

    Raises :class:`UnsupportedFormat` for a key that is not in :data:`ARTIFACT_FORMATS`.
    """
    info = _ARTIFACT_INFOS.get(normalize_format_key(key))
    if info is None:
        raise UnsupportedFormat(f"Unsupported output format {key!r}.", param="output.formats")
    return info.renderer(transcript, False)

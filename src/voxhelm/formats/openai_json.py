"""JSON transcripts: OpenAI's `json`, `verbose_json` and `diarized_json` bodies, the
`transcript.json` artifact."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from voxhelm.errors import InvalidJson
from voxhelm.formats.encoding import dump_artifact_json, dump_response_json, finite_or
from voxhelm.stt.languages import language_name
from voxhelm.stt.loops import DROPPED, REPAIRED, SUSPECT
from voxhelm.transcript import Segment, Transcript


def render_json(transcript: Transcript) -> bytes:
    """OpenAI's default body, ``{"text": "..."}``."""
    return dump_response_json({"text": transcript.text.strip()})


def render_verbose_json(transcript: Transcript, words: bool = False) -> bytes:
    """OpenAI's ``verbose_json`` body, which the official ``openai`` client parses.

    Keys in order: ``task``, ``language``, ``duration``, ``text``, ``segments`` and, with
    ``words=True`` (``timestamp_granularities[]=word``), a top-level ``words`` list of
    ``{"word", "start", "end"}``. ``task`` is kept from the reference; ``language`` is the
    name OpenAI answers (``english``, not the code ``en``), and for a translation the
    language of the text, always ``english``, as OpenAI's; ``duration`` is OpenAI's (the
    audio length, else the last segment end, else 0.0).
    Statistics an engine did not report are rendered as ``0.0`` / ``[]`` so typed clients
    accept them. A segment carries ``speaker`` only when it has one and ``voxhelm_flags``
    only when post-processing flagged it.
    """
    payload: dict[str, Any] = {
        "task": transcript.task,
        "language": _language(transcript),
        "duration": _duration(transcript),
        "text": transcript.text.strip(),
        "segments": [_verbose_segment(segment) for segment in transcript.segments],
    }
    if words:
        payload["words"] = [
            {"word": word.word.strip(), "start": float(word.start), "end": float(word.end)}
            for word in transcript.words
            if word.word.strip()
        ]
    return dump_response_json(payload)


ANONYMOUS_SPEAKER = re.compile(r"Speaker \d+")
"""The labels :mod:`voxhelm.diarization.align` gives speakers nobody named."""


def render_diarized_json(transcript: Transcript) -> bytes:
    """OpenAI's ``diarized_json`` body (the official client's ``TranscriptionDiarized``):
    ``task``, ``duration``, ``text`` and ``segments`` as :func:`diarized_segments` gives
    them. No ``usage``: nothing is billed."""
    return dump_response_json(
        {
            "task": "transcribe",
            "duration": _duration(transcript),
            "text": transcript.text.strip(),
            "segments": diarized_segments(transcript),
        }
    )


def diarized_segments(transcript: Transcript) -> list[dict[str, Any]]:
    """The segments of ``diarized_json`` (and of its streamed ``transcript.text.segment``
    events): ``type``, ``id`` (``seg_0``, ...), ``start``, ``end``, ``text`` (stripped)
    and ``speaker``, for every segment with text.

    Speakers are named as OpenAI names them: a known speaker keeps its name, anonymous
    speakers (``Speaker 2``) become ``A``, ``B``, ... in the order they first speak. The
    format requires a speaker on every segment, so a segment no speaker turn overlapped (a
    word in a pause) takes the speaker before it, else the one after it.
    """
    spoken = [segment for segment in transcript.segments if segment.text.strip()]
    labels = _carried([segment.speaker for segment in spoken])
    # A letter a known speaker is called by is never given to an anonymous one.
    taken = {label for label in labels if label and not ANONYMOUS_SPEAKER.fullmatch(label)}
    free = (letter for letter in map(_letter, itertools.count()) if letter not in taken)
    letters: dict[str, str] = {}
    for label in labels:
        if label is not None and ANONYMOUS_SPEAKER.fullmatch(label) and label not in letters:
            letters[label] = next(free)
    nobody = next(free)  # no segment has a speaker at all: one voice, as OpenAI shows it
    return [
        {
            "type": "transcript.text.segment",
            "id": f"seg_{number}",
            "start": round(float(segment.start), 3),
            "end": round(float(max(segment.start, segment.end)), 3),
            "text": segment.text.strip(),
            "speaker": letters.get(label, label) if label is not None else nobody,
        }
        for number, (segment, label) in enumerate(zip(spoken, labels, strict=True))
    ]


def _carried(labels: list[str | None]) -> list[str | None]:
    """Each missing label filled from the one before it, else the one after it."""
    filled = list(labels)
    for index in range(1, len(filled)):
        filled[index] = filled[index] or filled[index - 1]
    for index in range(len(filled) - 2, -1, -1):
        filled[index] = filled[index] or filled[index + 1]
    return filled


def _letter(index: int) -> str:
    """``A`` ... ``Z``, then ``AA``, ``AB``, ... (spreadsheet columns)."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def render_transcript_json(transcript: Transcript) -> bytes:
    """The batch ``transcript.json`` artifact, in the reference's layout (its times in
    whole milliseconds and its texts trimmed, where the reference kept float noise).

    ``{"task", "language", "text", "segments": [{"id", "seek", "start", "end", "text"
    [, "speaker"]}]}`` with indent 2 and ASCII escaping; segments as they are (no clamping).
    A top-level ``voxhelm_flags`` object follows with the quality summary (see
    :func:`quality_summary`), so the reference's segment objects stay exactly as they were.
    """
    payload: dict[str, Any] = {
        "task": transcript.task,
        "language": transcript.language,
        "text": transcript.text.strip(),
        "segments": [_reference_segment(segment) for segment in transcript.segments],
        "voxhelm_flags": quality_summary(transcript),
    }
    return dump_artifact_json(payload)


def read_transcript_json(
    payload: Mapping[str, Any], *, duration: float | None, backend: str = "", model: str = ""
) -> Transcript:
    """The :class:`Transcript` a ``transcript.json`` artifact was rendered from, as far as
    the artifact formats need it: segments with their ids, times, text, speaker and flags
    (the ``voxhelm_flags`` summary), language and task. Rendering it again gives the same
    json, dote, podlove, vtt, srt and text bodies. ``duration`` is the audio's length (the
    job's metadata), which the flags' ``no_speech_ratio`` needs.

    Raises :class:`InvalidJson` for a document that is not such an artifact.
    """
    raw_segments = payload.get("segments")
    if not isinstance(raw_segments, list):
        raise InvalidJson("transcript.json has no segment list.")
    flagged = payload.get("voxhelm_flags") or {}
    flags = {
        item.get("id"): tuple(str(flag) for flag in item.get("flags") or ())
        for item in (flagged.get("segments") or [] if isinstance(flagged, dict) else [])
        if isinstance(item, dict)
    }
    segments = []
    try:
        for item in raw_segments:
            speaker = item.get("speaker")
            segments.append(
                Segment(
                    id=int(item["id"]),
                    start=float(item["start"]),
                    end=float(item["end"]),
                    text=str(item["text"]),
                    seek=int(item["seek"]) if item.get("seek") is not None else None,
                    speaker=str(speaker) if speaker else None,
                    flags=flags.get(item["id"], ()),
                )
            )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise InvalidJson("transcript.json has a malformed segment.") from None
    language = payload.get("language")
    return Transcript(
        text=str(payload.get("text") or ""),
        language=str(language) if language else None,
        duration=duration,
        segments=tuple(segments),
        backend=backend,
        model=model,
        task=str(payload.get("task") or "transcribe"),
    )


def quality_summary(transcript: Transcript) -> dict[str, Any]:
    """How much of a transcript post-processing had to touch, and how much is silence.

    ``segments``: ``{"id", "flags"}`` of every flagged segment; ``repaired``, ``suspect``,
    ``dropped``: ``[start, end]`` spans (seconds) of neighbouring segments with that flag,
    merged; ``no_speech_ratio``: the share of the audio that no segment with text covers.
    """
    summary: dict[str, Any] = {
        "segments": [
            {"id": segment.id, "flags": list(segment.flags)}
            for segment in transcript.segments
            if segment.flags
        ]
    }
    for flag in (REPAIRED, SUSPECT, DROPPED):
        summary[flag] = _spans(s for s in transcript.segments if flag in s.flags)
    spoken = _spans(s for s in transcript.segments if s.text.strip())
    covered = sum(end - start for start, end in spoken)
    duration = _duration(transcript)
    summary["no_speech_ratio"] = round(max(0.0, 1.0 - covered / duration), 3) if duration else 0.0
    return summary


def _spans(segments: Iterable[Segment]) -> list[list[float]]:
    """``[start, end]`` of the given segments, overlapping or touching ones merged."""
    spans: list[list[float]] = []
    for segment in sorted(segments, key=lambda s: s.start):
        start, end = round(segment.start, 3), round(max(segment.start, segment.end), 3)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return spans


def _language(transcript: Transcript) -> str | None:
    if transcript.task == "translate":
        return language_name("en")
    return language_name(transcript.language) if transcript.language else None


def _duration(transcript: Transcript) -> float:
    if transcript.duration is not None:
        return finite_or(transcript.duration, 0.0)
    return max((float(segment.end) for segment in transcript.segments), default=0.0)


def _reference_segment(segment: Segment, **extra: Any) -> dict[str, Any]:
    """The reference's segment object; ``extra`` keys go after ``text``, then ``speaker``."""
    item: dict[str, Any] = {
        "id": segment.id,
        "seek": segment.seek_frames,
        "start": float(segment.start),
        "end": float(segment.end),
        "text": segment.text,
        **extra,
    }
    if segment.speaker:
        item["speaker"] = segment.speaker
    return item


def _verbose_segment(segment: Segment) -> dict[str, Any]:
    item = _reference_segment(
        segment,
        tokens=list(segment.tokens),
        temperature=finite_or(segment.temperature, 0.0),
        avg_logprob=finite_or(segment.avg_logprob, 0.0),
        compression_ratio=finite_or(segment.compression_ratio, 0.0),
        no_speech_prob=finite_or(segment.no_speech_prob, 0.0),
    )
    if segment.flags:
        item["voxhelm_flags"] = list(segment.flags)
    return item

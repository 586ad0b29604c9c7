"""Known speakers: voiceprints from reference clips, matched to the diarized speakers, and the
``transcript.speakers.json`` sidecar that reports the suggestions.

A voiceprint is the mean (then unit length) CAM++ embedding of the speech windows of a name's
reference clips; clips with the same name are merged. Each anonymous speaker of the recording
gets a voiceprint the same way from its own turns, and every transcript segment (cut where
the anonymous speaker changes, as anonymous labels cut it) takes the match of its speaker:
the reference with the highest cosine similarity, accepted when the similarity reaches
``min_top_similarity`` and beats the runner-up by ``auto_accept_margin``. A segment without
an anonymous speaker is matched on its own audio and is accepted only when it lasts at
least ``min_segment_duration``. Public transcripts stay unlabeled in this mode unless asked;
the sidecar carries names and scores, never where the reference audio came from.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxhelm.audio import SAMPLE_RATE, Audio
from voxhelm.diarization.align import label_transcript
from voxhelm.diarization.base import KNOWN_STRATEGY, DiarizationError, Turn
from voxhelm.diarization.embedding import (
    MIN_FRAMES,
    MODEL_NAME,
    SpeakerEmbedder,
    filterbank,
    frames_between,
    model_version,
    normalize,
)
from voxhelm.diarization.onnx import speech_regions, windows_of
from voxhelm.transcript import Segment, Transcript

SPEAKER_SOURCE = "known_speaker_voiceprint"
MIN_EMBED_SECONDS = 0.25
NO_REFERENCES = "Known-speaker diarization requires at least one speaker reference."
NO_VOICEPRINT = "No usable known-speaker reference audio produced an embedding."


@dataclass(frozen=True)
class MatchOptions:
    """The request's ``known_speaker`` settings, with the reference's defaults."""

    embedding_model: str = MODEL_NAME
    min_segment_duration: float = 1.5
    auto_accept_margin: float = 0.15
    min_top_similarity: float = 0.55


MATCH_FIELDS = frozenset(MatchOptions.__dataclass_fields__)


@dataclass(frozen=True)
class SavedVoice:
    """A voiceprint of the producer's speaker library, as a job's request carries it."""

    name: str
    library: str
    vector: tuple[float, ...]
    embedding_version: str


@dataclass(frozen=True)
class ReferenceClip:
    """Reference audio of one known speaker (already cut to its time range)."""

    name: str
    audio: Audio


@dataclass(frozen=True)
class Match:
    """The best references for one voice: sorted candidates and whether to accept the top."""

    candidates: tuple[tuple[str, float], ...]
    margin: float
    confident: bool

    @property
    def top(self) -> tuple[str, float] | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class SegmentMatch:
    index: int
    start: float
    end: float
    match: Match | None
    raw_speaker: str | None

    @property
    def uncertain(self) -> bool:
        return self.match is None or not self.match.confident


def voiceprint(audio: Audio, embedder: SpeakerEmbedder) -> np.ndarray | None:
    """The unit-length mean embedding of the speech in ``audio``; None without usable speech."""
    regions = speech_regions(audio) if len(audio.samples) else []
    windows = windows_of(regions)
    if not windows:
        if len(audio.samples) < MIN_EMBED_SECONDS * SAMPLE_RATE:
            return None
        return embedder.embed(audio.samples)  # no speech found: use all of it
    frames = filterbank(audio.samples)
    if len(frames) < MIN_FRAMES:
        return None
    vectors = normalize(
        embedder.embed_frames([frames_between(frames, w.start, w.end) for w in windows])
    )
    centroid: np.ndarray = normalize(vectors.mean(axis=0, keepdims=True))[0]
    return centroid


def library_voiceprints(voices: Sequence[SavedVoice]) -> dict[str, np.ndarray]:
    """The saved voiceprints by name.

    Raises :class:`DiarizationError` for one made by other embedding weights (its similarity
    to today's vectors would mean nothing)."""
    prints: dict[str, np.ndarray] = {}
    for voice in voices:
        if not voice.vector or voice.embedding_version != model_version():
            raise DiarizationError(
                f"The library voice {voice.library!r} was saved with another speaker "
                "model; save it again from a recent job.",
                code="reference_audio_failed",
            )
        prints[voice.name] = normalize(np.asarray([voice.vector], dtype=np.float32))[0]
    return prints


def reference_voiceprints(
    clips: Sequence[ReferenceClip],
    embedder: SpeakerEmbedder,
    saved: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """One voiceprint per speaker name (clips of the same name merged, and merged with a
    ``saved`` library voiceprint of that name)."""
    saved = saved or {}
    if not clips and not saved:
        raise DiarizationError(NO_REFERENCES)
    found: dict[str, list[np.ndarray]] = {name: [vector] for name, vector in saved.items()}
    for clip in clips:
        vector = voiceprint(clip.audio, embedder)
        if vector is not None:
            found.setdefault(clip.name, []).append(vector)
    if not found:
        raise DiarizationError(NO_VOICEPRINT)
    return {name: normalize(np.mean(v, axis=0, keepdims=True))[0] for name, v in found.items()}


def turn_voiceprints(
    audio: Audio, turns: Sequence[Turn], embedder: SpeakerEmbedder, min_seconds: float
) -> dict[str, np.ndarray]:
    """A voiceprint per anonymous speaker, from its turns of at least ``min_seconds`` (or from
    all its turns when none is that long)."""
    by_speaker: dict[str, list[Turn]] = {}
    for turn in turns:
        by_speaker.setdefault(turn.speaker, []).append(turn)
    prints = {}
    for speaker, own in by_speaker.items():
        long_enough = [t for t in own if t.duration >= min_seconds] or own
        pieces = [
            audio.samples[round(t.start * SAMPLE_RATE) : round(t.end * SAMPLE_RATE)]
            for t in long_enough
        ]
        vector = voiceprint(Audio(np.concatenate(pieces)), embedder) if pieces else None
        if vector is not None:
            prints[speaker] = vector
    return prints


def match(vector: np.ndarray, prints: Mapping[str, np.ndarray], options: MatchOptions) -> Match:
    """Candidates by similarity (then name); confident when top and margin are high enough."""
    scored = sorted(
        ((name, round(float(np.dot(vector, ref)), 6)) for name, ref in prints.items()),
        key=lambda item: (-item[1], item[0]),
    )
    top = scored[0][1] if scored else 0.0
    second = scored[1][1] if len(scored) > 1 else 0.0
    margin = round(top - second, 6)
    confident = top >= options.min_top_similarity and margin >= options.auto_accept_margin
    return Match(tuple(scored), margin, confident)


@dataclass(frozen=True)
class Identified:
    """The transcript as known speakers label it and a match for each of its segments.

    ``transcript`` is cut where the anonymous speaker changes and each segment carries
    that speaker (``Speaker 2``) or none; ``matches[i]`` is the match of its segment ``i``.
    """

    transcript: Transcript
    matches: list[SegmentMatch]


def identify(
    transcript: Transcript,
    *,
    audio: Audio,
    turns: Sequence[Turn] | None,
    prints: Mapping[str, np.ndarray],
    embedder: SpeakerEmbedder,
    options: MatchOptions,
) -> Identified:
    """The transcript cut at speaker changes, and a match for every segment of it.

    ``turns``: normalized anonymous turns, or None when anonymous diarization was not
    available. The cut is anonymous diarization's own (:func:`label_transcript`), so a
    segment holding two voices is two segments in both modes. A segment takes the match
    of its anonymous speaker, or without one is matched on its own audio.
    """
    cut = transcript
    if turns:
        with contextlib.suppress(DiarizationError):  # no segment overlaps a turn: no cut
            cut = label_transcript(transcript, turns)
    speakers = (
        turn_voiceprints(audio, turns, embedder, options.min_segment_duration) if turns else {}
    )
    by_speaker = {speaker: match(vector, prints, options) for speaker, vector in speakers.items()}
    results = []
    for index, segment in enumerate(cut.segments):
        raw = segment.speaker
        found = by_speaker.get(raw) if raw else None
        if found is None:
            found = _segment_match(audio, segment, prints, embedder, options)
        results.append(SegmentMatch(index, segment.start, segment.end, found, raw))
    return Identified(cut, results)


def _segment_match(
    audio: Audio,
    segment: Segment,
    prints: Mapping[str, np.ndarray],
    embedder: SpeakerEmbedder,
    options: MatchOptions,
) -> Match | None:
    start, end = segment.start, segment.end
    samples = audio.samples[max(0, round(start * SAMPLE_RATE)) : round(end * SAMPLE_RATE)]
    if len(samples) < MIN_EMBED_SECONDS * SAMPLE_RATE:
        return None
    found = match(embedder.embed(samples), prints, options)
    if end - start < options.min_segment_duration:
        return Match(found.candidates, found.margin, confident=False)
    return found


def sidecar(
    matches: Sequence[SegmentMatch],
    names: Sequence[str],
    options: MatchOptions,
    *,
    raw_available: bool,
) -> dict[str, Any]:
    """The ``transcript.speakers.json`` document (the reference's schema, version 1)."""
    segments = []
    distribution: dict[str, int] = {}
    margins = []
    for item in matches:
        top = item.match.top if item.match else None
        name = None if item.uncertain or top is None else top[0]
        if name is not None:
            distribution[name] = distribution.get(name, 0) + 1
        if item.match is not None:
            margins.append(item.match.margin)
        segments.append(
            {
                "index": item.index,
                "start": item.start,
                "end": item.end,
                "speaker": name,
                "speaker_source": SPEAKER_SOURCE,
                "speaker_confidence": top[1] if top else 0.0,
                "speaker_margin": item.match.margin if item.match else 0.0,
                "speaker_candidates": [
                    {"speaker": n, "similarity": s}
                    for n, s in (item.match.candidates if item.match else ())
                ],
                "speaker_uncertain": item.uncertain,
                "raw_diarization_speaker": item.raw_speaker,
            }
        )
    confident = sum(1 for s in segments if s["speaker"] is not None)
    summary = {
        "strategy": KNOWN_STRATEGY,
        "embedding_model": options.embedding_model,
        "embedding_version": model_version(),
        "known_speakers": sorted(set(names)),
        "min_segment_duration": options.min_segment_duration,
        "auto_accept_margin": options.auto_accept_margin,
        "min_top_similarity": options.min_top_similarity,
        "segment_count": len(segments),
        "confident_segment_count": confident,
        "uncertain_segment_count": len(segments) - confident,
        "confident_speaker_distribution": distribution,
        "margin_median": round(statistics.median(margins), 6) if margins else 0.0,
        "raw_diarization_available": raw_available,
    }
    return {"version": 1, "summary": summary, "segments": segments}

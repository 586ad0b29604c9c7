"""Speaker turns → transcript segment labels: stable generic names, largest overlap, and
splitting a segment where the speaker changes inside it.

Labels are ``Speaker 1``, ``Speaker 2``, … in order of first appearance, so ``Speaker 1`` is
whoever speaks first. A segment takes the speaker who talks most within it. Beyond the
reference, a segment whose words (with timestamps) belong to different speakers is split at
the word boundary nearest each change; a run of words shorter than :data:`MIN_RUN_SECONDS`
or with fewer than :data:`MIN_RUN_WORDS` words is a blip (a "yeah", a misplaced boundary)
and is folded into its neighbour instead of becoming a segment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from voxhelm.diarization.base import DiarizationError, Turn
from voxhelm.transcript import Segment, Transcript, Word

NO_TURNS = "Diarization backend returned no usable speaker turns."
NO_OVERLAP = "Diarization speaker turns did not overlap transcript segments."
MIN_RUN_SECONDS = 1.0
MIN_RUN_WORDS = 3


def normalize_turns(turns: Iterable[Turn]) -> list[Turn]:
    """Turns sorted by (start, end, label), blank labels and empty turns dropped, negative
    times clamped to 0, and labels renamed ``Speaker N`` in order of first appearance.

    Raises :class:`DiarizationError` when nothing usable is left.
    """
    kept = []
    for turn in sorted(turns, key=lambda t: (t.start, t.end, t.speaker)):
        label = str(turn.speaker).strip()
        start, end = max(turn.start, 0.0), max(turn.end, 0.0)
        if label and end > start:
            kept.append(Turn(start, end, label))
    if not kept:
        raise DiarizationError(NO_TURNS)
    names: dict[str, str] = {}
    for turn in kept:
        names.setdefault(turn.speaker, f"Speaker {len(names) + 1}")
    return [Turn(t.start, t.end, names[t.speaker]) for t in kept]


def speaker_at(start: float, end: float, turns: Sequence[Turn]) -> str | None:
    """The speaker who talks most within ``[start, end)``, or None when no turn overlaps.

    Overlaps are summed per speaker (the reference took the single longest turn, a flaw: a
    speaker with two 0.5 s turns lost to another's single 0.6 s one). Ties go to the speaker
    whose overlapping turn starts first, then to the label.
    """
    totals: dict[str, float] = {}
    first: dict[str, float] = {}
    for turn in turns:
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > 0:
            totals[turn.speaker] = totals.get(turn.speaker, 0.0) + overlap
            first[turn.speaker] = min(first.get(turn.speaker, turn.start), turn.start)
    if not totals:
        return None
    return min(totals, key=lambda speaker: (-totals[speaker], first[speaker], speaker))


def label_transcript(
    transcript: Transcript, turns: Sequence[Turn], *, split: bool = True
) -> Transcript:
    """``transcript`` with a speaker on every segment some turn overlaps: the one cut of
    both anonymous and known-speaker diarization.

    ``turns`` must be normalized. With ``split``, segments that change speaker between words
    become one segment per speaker (ids renumbered, the text unchanged). Raises
    :class:`DiarizationError` when no segment overlaps any turn.
    """
    segments: list[Segment] = []
    for segment in transcript.segments:
        if segment.end <= segment.start:
            segments.append(dataclasses.replace(segment, speaker=None))
            continue
        pieces = _split(segment, turns) if split else []
        if len(pieces) > 1:
            segments.extend(pieces)
        else:
            speaker = speaker_at(segment.start, segment.end, turns)
            segments.append(dataclasses.replace(segment, speaker=speaker))
    if transcript.segments and not any(s.speaker for s in segments):
        raise DiarizationError(NO_OVERLAP)
    relabeled = dataclasses.replace(transcript, segments=tuple(segments))
    return relabeled.renumbered() if len(segments) != len(transcript.segments) else relabeled


def _split(segment: Segment, turns: Sequence[Turn]) -> list[Segment]:
    """The segment cut into per-speaker pieces at word boundaries, or [] for no cut."""
    words = [w for w in segment.words if w.end > w.start]
    if len(words) < 2 or len(words) != len(segment.words):
        return []
    speakers = [speaker_at(w.start, w.end, turns) for w in words]
    runs = _fold_blips(_runs(words, speakers))
    if len(runs) < 2:
        return []
    pieces = []
    for number, (speaker, run) in enumerate(runs):
        first, last = number == 0, number == len(runs) - 1
        pieces.append(
            dataclasses.replace(
                segment,
                start=segment.start if first else run[0].start,
                end=segment.end if last else run[-1].end,
                text="".join(w.word for w in run),
                seek=segment.seek if first else None,
                tokens=(),  # Whisper's token ids cannot be cut at a word boundary
                words=tuple(run),
                speaker=speaker,
            )
        )
    return pieces


Run = tuple[str | None, list[Word]]


def _runs(words: Sequence[Word], speakers: Sequence[str | None]) -> list[Run]:
    runs: list[Run] = []
    for word, found in zip(words, speakers, strict=True):
        # A word in a gap between turns stays with its sentence.
        runs.append((runs[-1][0] if found is None and runs else found, [word]))
    runs = _merge_neighbours(runs)
    if len(runs) > 1 and runs[0][0] is None:  # leading unlabeled words join the first speaker
        runs[1][1][:0] = runs[0][1]
        runs.pop(0)
    return runs


def _is_blip(run: list[Word]) -> bool:
    return run[-1].end - run[0].start < MIN_RUN_SECONDS or len(run) < MIN_RUN_WORDS


def _fold_blips(runs: list[Run]) -> list[Run]:
    """Fold short runs into a neighbour (shortest first) until none is left or one run is."""
    runs = [(speaker, list(words)) for speaker, words in runs]
    while len(runs) > 1:
        blips = [i for i, (_speaker, words) in enumerate(runs) if _is_blip(words)]
        if not blips:
            break
        index = min(blips, key=lambda i: (runs[i][1][-1].end - runs[i][1][0].start, i))
        words = runs.pop(index)[1]
        before = runs[index - 1] if index > 0 else None
        after = runs[index] if index < len(runs) else None
        # Into the longer neighbour: a stray word belongs to the sentence it interrupts.
        if after is not None and (before is None or len(after[1]) > len(before[1])):
            after[1][:0] = words
        else:
            assert before is not None
            before[1].extend(words)
        runs = _merge_neighbours(runs)
    return runs


def _merge_neighbours(runs: list[Run]) -> list[Run]:
    merged: list[Run] = []
    for speaker, words in runs:
        if merged and merged[-1][0] == speaker:
            merged[-1][1].extend(words)
        else:
            merged.append((speaker, words))
    return merged

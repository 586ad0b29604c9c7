"""Loop repair: finding degenerate Whisper segments and re-decoding only their window.

Whisper sometimes loops: it repeats a phrase inside a segment ("Thank you. Thank you. Thank
you. Thank you."), repeats the previous segment across windows (usually over music or noise,
when conditioned on the previous text), or writes text over audio it judged to be no speech.
:func:`find_degenerate` is a pure function over :class:`~voxhelm.transcript.Segment` objects,
so it works on any engine's output and on recorded transcripts. :func:`repair_loops` groups
adjacent degenerate segments into windows and asks a ``redecode(start, end)`` callable (the
engine, re-running the same loaded model on that stretch of the original audio, without the
previous text as context) for a second opinion.

Outcomes, each logged at INFO with its times (never with the text), and each added to the
segments' ``flags``:

* ``repaired`` — the re-decode is not degenerate; it replaces the window's segments.
* ``dropped`` — the re-decode found no speech at all: the window's text was a hallucination
  (typically a repeat over music or silence). The segments stay, with empty text and no
  words, so clients can see what was removed; subtitles and the joined text skip them.
* ``suspect`` — the re-decode is degenerate too (speech that really repeats, or a model that
  loops either way); the better of the two is kept: fewer degenerate findings, the original
  on a tie or when the re-decode covers less of the audio with words (it may have missed a
  sentence of speech that really repeats).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voxhelm import metrics
from voxhelm.transcript import Segment

logger = logging.getLogger("voxhelm.stt")

REPAIRED = "repaired"
SUSPECT = "suspect"
DROPPED = "dropped"

# Whisper's own thresholds (openai/whisper ``transcribe``): a gzip ratio above 2.4 means the
# text is mostly repetition; no_speech_prob over 0.6 with an average log-probability under -1
# means text the model itself doubts over audio it judged silent.
COMPRESSION_RATIO_THRESHOLD = 2.4
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
# A phrase of 1 to 4 words said 4 times in a row is a loop far more often than speech.
MAX_PHRASE_WORDS = 4
MIN_PHRASE_REPEATS = 4
# A segment that says exactly what the segment before it said is a loop from two words on
# ("Yes." "Yes." is speech); one that copies the segment two or three back (Whisper looping
# back over music) counts from a whole sentence, since short replies do recur in dialogue.
MIN_REPEATED_SEGMENT_WORDS = 2
MIN_REPEATED_SENTENCE_WORDS = 4
LOOKBACK_SEGMENTS = 3
# Seconds added on each side of a window (never into a neighbouring segment), because
# Whisper's segment boundaries are often a little early or late.
WINDOW_PADDING_SECONDS = 0.5

# On a second degenerate pass, the re-decode replaces the original only if its segments with
# words cover at least this share of the seconds the original's did.
MIN_COVERAGE = 0.9

Redecode = Callable[[float, float], Sequence[Segment]]
"""Re-decode the original audio from ``start`` to ``end`` seconds; segments in absolute time."""


class Reason(enum.StrEnum):
    REPEATED_PHRASE = "repeated_phrase"
    REPEATS_PREVIOUS = "repeats_previous"
    COMPRESSION_RATIO = "compression_ratio"
    TEXT_OVER_NO_SPEECH = "text_over_no_speech"


@dataclass(frozen=True)
class Window:
    """Adjacent degenerate segments ``first..last`` (indices) and the audio span to re-decode."""

    first: int
    last: int
    start: float
    end: float
    reasons: tuple[Reason, ...]


def compression_ratio(text: str) -> float:
    """The gzip ratio of ``text`` as Whisper computes it (UTF-8 bytes / zlib-compressed)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def words_of(text: str) -> list[str]:
    """Lowercased words without punctuation, for comparing texts."""
    return re.findall(r"\w+(?:'\w+)*", text.lower())


def has_repeated_phrase(words: Sequence[str]) -> bool:
    """Whether a phrase of up to MAX_PHRASE_WORDS words occurs MIN_PHRASE_REPEATS times in a row."""
    for size in range(1, MAX_PHRASE_WORDS + 1):
        for start in range(len(words) - size * MIN_PHRASE_REPEATS + 1):
            phrase = words[start : start + size]
            if all(
                words[start + k * size : start + (k + 1) * size] == phrase
                for k in range(1, MIN_PHRASE_REPEATS)
            ):
                return True
    return False


def degeneracy(segment: Segment, earlier: Sequence[Segment] = ()) -> tuple[Reason, ...]:
    """Why ``segment`` looks degenerate (empty when it looks fine).

    ``earlier`` are the segments before it, oldest first, for the cross-segment repeat (only
    the last LOOKBACK_SEGMENTS count). The compression ratio is checked on the segment's own
    text and on the engine's reported value, which faster-whisper computes per 30-second
    window: a window whose temperature fallback gave up is flagged as a whole.
    """
    words = words_of(segment.text)
    if not words:
        return ()
    reasons: list[Reason] = []
    if has_repeated_phrase(words):
        reasons.append(Reason.REPEATED_PHRASE)
    if _repeats_earlier(words, earlier):
        reasons.append(Reason.REPEATS_PREVIOUS)
    reported = segment.compression_ratio or 0.0
    if max(reported, compression_ratio(segment.text.strip())) > COMPRESSION_RATIO_THRESHOLD:
        reasons.append(Reason.COMPRESSION_RATIO)
    if (
        segment.no_speech_prob is not None
        and segment.avg_logprob is not None
        and segment.no_speech_prob > NO_SPEECH_THRESHOLD
        and segment.avg_logprob < LOGPROB_THRESHOLD
    ):
        reasons.append(Reason.TEXT_OVER_NO_SPEECH)
    return tuple(reasons)


def _repeats_earlier(words: list[str], earlier: Sequence[Segment]) -> bool:
    recent = list(earlier[-LOOKBACK_SEGMENTS:])
    for distance, other in enumerate(reversed(recent), start=1):
        needed = MIN_REPEATED_SEGMENT_WORDS if distance == 1 else MIN_REPEATED_SENTENCE_WORDS
        if len(words) >= needed and words == words_of(other.text):
            return True
    return False


def find_degenerate(
    segments: Sequence[Segment], earlier: Sequence[Segment] = ()
) -> dict[int, tuple[Reason, ...]]:
    """Index -> reasons for every degenerate segment; ``earlier`` precede ``segments[0]``."""
    context = list(earlier[-LOOKBACK_SEGMENTS:])
    found: dict[int, tuple[Reason, ...]] = {}
    for index, segment in enumerate(segments):
        reasons = degeneracy(segment, context)
        if reasons:
            found[index] = reasons
        context = [*context[1 - LOOKBACK_SEGMENTS :], segment]
    return found


def find_windows(segments: Sequence[Segment]) -> list[Window]:
    """The degenerate segments grouped into adjacent runs, each with its padded audio span."""
    found = find_degenerate(segments)
    windows: list[Window] = []
    for index in sorted(found):
        if windows and windows[-1].last == index - 1:
            last = windows[-1]
            reasons = last.reasons + tuple(r for r in found[index] if r not in last.reasons)
            windows[-1] = dataclasses.replace(last, last=index, reasons=reasons)
        else:
            windows.append(Window(index, index, 0.0, 0.0, found[index]))
    return [_with_span(window, segments) for window in windows]


def _with_span(window: Window, segments: Sequence[Segment]) -> Window:
    group = segments[window.first : window.last + 1]
    start = min(s.start for s in group)
    end = max(max(s.start, s.end) for s in group)
    floor = segments[window.first - 1].end if window.first > 0 else 0.0
    padded_start = max(min(start, max(floor, start - WINDOW_PADDING_SECONDS)), 0.0)
    padded_end = end + WINDOW_PADDING_SECONDS
    if window.last + 1 < len(segments):
        padded_end = max(min(padded_end, segments[window.last + 1].start), end)
    return dataclasses.replace(window, start=padded_start, end=padded_end)


def repair_loops(segments: Sequence[Segment], redecode: Redecode) -> list[Segment]:
    """``segments`` with every degenerate window re-decoded and flagged (see the module doc).

    Costs nothing beyond the detector when no segment is degenerate. Segment ids are left as
    they are; renumber the transcript afterwards.
    """
    windows = find_windows(segments)
    if not windows:
        return list(segments)
    repaired: list[Segment] = []
    position = 0
    for window in windows:
        repaired.extend(segments[position : window.first])
        original = list(segments[window.first : window.last + 1])
        earlier = repaired[-LOOKBACK_SEGMENTS:]
        repaired.extend(_repair_window(window, original, redecode, earlier))
        position = window.last + 1
    repaired.extend(segments[position:])
    return repaired


def _repair_window(
    window: Window, original: list[Segment], redecode: Redecode, earlier: Sequence[Segment]
) -> list[Segment]:
    candidate = [s for s in redecode(window.start, window.end) if s.start < window.end]
    reasons = ",".join(window.reasons)
    if not any(words_of(s.text) for s in candidate):
        _log(DROPPED, window, reasons)
        return [
            _flagged(dataclasses.replace(s, text="", tokens=(), words=()), DROPPED)
            for s in original
        ]
    left = find_degenerate(candidate, earlier)
    if not left:
        _log(REPAIRED, window, reasons)
        return [_flagged(s, REPAIRED) for s in candidate]
    before = find_degenerate(original, earlier)
    fewer = _findings(left) < _findings(before)
    # Neither pass is clean: the audio may really repeat itself. A candidate that says less
    # over less of the audio may just have missed a sentence; it never wins that way.
    covers = _spoken_seconds(candidate) >= MIN_COVERAGE * _spoken_seconds(original)
    kept = candidate if fewer and covers else original
    _log(SUSPECT, window, reasons)
    return [_flagged(s, SUSPECT) for s in kept]


def _spoken_seconds(segments: Sequence[Segment]) -> float:
    return sum(max(0.0, s.end - s.start) for s in segments if words_of(s.text))


def _findings(found: dict[int, tuple[Reason, ...]]) -> int:
    return sum(len(reasons) for reasons in found.values())


def _flagged(segment: Segment, flag: str) -> Segment:
    if flag in segment.flags:
        return segment
    return dataclasses.replace(segment, flags=(*segment.flags, flag))


def _log(outcome: str, window: Window, reasons: str) -> None:
    metrics.loop_repairs.labels(outcome).inc()
    logger.info(
        "loop repair: %s %.2f-%.2fs (segments %d-%d: %s)",
        outcome,
        window.start,
        window.end,
        window.first,
        window.last,
        reasons,
    )

"""The neutral transcript model every engine returns and every output format renders from."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def _require_finite(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{owner}.{name} must be a finite number of seconds, not {value!r}.")


def _keep_milliseconds(item: Word | Segment) -> None:
    """Round ``item``'s times to whole milliseconds, as plain floats.

    Done where every word and segment is made (an engine, a shift by a window's offset, a
    split at a speaker change, a transcript read back for a correction), so no artifact
    shows float noise such as ``7.339999999999996`` or numpy scalars. ``round(s * 1000)``
    is the formats' own rounding (``to_milliseconds``), so a JSON time and a cue agree.
    """
    for name in ("start", "end"):
        object.__setattr__(item, name, round(float(getattr(item, name)) * 1000) / 1000)


@dataclass(frozen=True)
class Word:
    """One word with its timing in seconds (whole milliseconds), as faster-whisper's ``Word``.

    ``word`` keeps the engine's leading space (``" Hello"``), so joined words read as the
    text; ``probability`` is None when the engine does not report one.
    """

    start: float
    end: float
    word: str
    probability: float | None = None

    def __post_init__(self) -> None:
        _require_finite("Word", start=self.start, end=self.end)
        _keep_milliseconds(self)


@dataclass(frozen=True)
class Segment:
    """One transcribed stretch of audio, with Whisper's per-segment statistics.

    ``start`` and ``end`` are seconds from the start of the audio and must be finite; they
    are kept in whole milliseconds, and ``text`` without surrounding whitespace (a segment
    cut from words would otherwise open with a word's space). ``end`` may be smaller than
    ``start`` (renderers that need order clamp it). ``seek`` is Whisper's window offset in
    10 ms frames; when None, renderers use ``int(start * 100)`` as the reference did (see
    :attr:`seek_frames`). The statistics are None when the engine does
    not report them. ``speaker`` is a display label such as ``"Speaker 1"``; ``flags`` are
    machine names attached by post-processing (for example loop repair).
    """

    id: int
    start: float
    end: float
    text: str
    seek: int | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    temperature: float | None = None
    tokens: tuple[int, ...] = ()
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_finite("Segment", start=self.start, end=self.end)
        _keep_milliseconds(self)
        object.__setattr__(self, "text", self.text.strip())

    @property
    def seek_frames(self) -> int:
        """``seek``, or the reference's truncation ``int(start * 100)`` (0.29 s gives 28)."""
        return self.seek if self.seek is not None else int(self.start * 100)

    def shifted(self, offset_seconds: float) -> Segment:
        """This segment with every timestamp (and a known ``seek``) moved by ``offset_seconds``."""
        return dataclasses.replace(
            self,
            start=self.start + offset_seconds,
            end=self.end + offset_seconds,
            seek=None if self.seek is None else self.seek + round(offset_seconds * 100),
            words=tuple(
                dataclasses.replace(w, start=w.start + offset_seconds, end=w.end + offset_seconds)
                for w in self.words
            ),
        )


def join_segment_texts(segments: Iterable[Segment]) -> str:
    """The transcript text as whisper.cpp builds it: stripped segment texts joined by one space."""
    return " ".join(text for text in (s.text.strip() for s in segments) if text)


@dataclass(frozen=True)
class Transcript:
    """A finished transcription, independent of any wire format.

    ``text`` is the full text; ``language`` an ISO 639-1 code or None when unknown;
    ``duration`` the audio length in seconds or None when unknown. ``backend`` and ``model``
    name the engine that produced it (``model`` is the public name, never a path). ``task`` is
    ``"transcribe"`` or ``"translate"``.
    """

    text: str
    language: str | None
    duration: float | None
    segments: tuple[Segment, ...]
    backend: str = ""
    model: str = ""
    task: str = "transcribe"

    @classmethod
    def from_segments(
        cls,
        segments: Iterable[Segment],
        language: str | None,
        duration: float | None,
        *,
        backend: str = "",
        model: str = "",
        task: str = "transcribe",
    ) -> Transcript:
        """Build a transcript whose ``text`` joins the stripped segment texts with one space."""
        segments = tuple(segments)
        return cls(join_segment_texts(segments), language, duration, segments, backend, model, task)

    @classmethod
    def joined(
        cls, pieces: Sequence[Transcript], language: str | None, duration: float | None
    ) -> Transcript:
        """The ``pieces`` of one recording (timed from its start, in order) as one
        transcript, segments renumbered; the engine and task are the first piece's."""
        first = pieces[0]
        return cls.from_segments(
            (segment for piece in pieces for segment in piece.segments),
            language=language,
            duration=duration,
            backend=first.backend,
            model=first.model,
            task=first.task,
        ).renumbered()

    @property
    def words(self) -> tuple[Word, ...]:
        """Every word of every segment, in order."""
        return tuple(word for segment in self.segments for word in segment.words)

    def with_speakers(self, labels: Sequence[str | None]) -> Transcript:
        """This transcript with ``labels[i]`` as the speaker of segment ``i``.

        A None or blank label leaves that segment without a speaker. Raises ValueError when
        the number of labels differs from the number of segments.
        """
        if len(labels) != len(self.segments):
            raise ValueError(f"Got {len(labels)} speaker labels for {len(self.segments)} segments.")
        segments = tuple(
            dataclasses.replace(segment, speaker=(label or "").strip() or None)
            for segment, label in zip(self.segments, labels, strict=True)
        )
        return dataclasses.replace(self, segments=segments)

    def shifted(self, offset_seconds: float) -> Transcript:
        """This transcript with every timestamp moved by ``offset_seconds``.

        Used to place a chunk's transcript at its position in the whole recording; ``duration``
        (the length of the chunk's audio) is left as it is.
        """
        return dataclasses.replace(
            self, segments=tuple(s.shifted(offset_seconds) for s in self.segments)
        )

    def renumbered(self) -> Transcript:
        """This transcript with segment ids ``0, 1, 2, ...`` in order (after stitching, repair)."""
        segments = tuple(dataclasses.replace(s, id=index) for index, s in enumerate(self.segments))
        return dataclasses.replace(self, segments=segments)

    def corrected(
        self,
        *,
        names: Mapping[str, str] | None = None,
        texts: Mapping[int, str] | None = None,
        speakers: Mapping[int, str] | None = None,
    ) -> Transcript:
        """This transcript as a person corrected it: every segment of speaker ``label`` is
        spoken by ``names[label]``; segment ``id`` says ``texts[id]`` and is spoken by
        ``speakers[id]`` (applied after the renames). ``text`` is joined again; timings,
        flags and every other field stay. Unknown labels and ids are the caller's to refuse.
        """
        names, texts, speakers = names or {}, texts or {}, speakers or {}
        segments = []
        for segment in self.segments:
            speaker = segment.speaker
            if speaker is not None and speaker in names:
                speaker = names[speaker]
            speaker = speakers.get(segment.id, speaker)
            changed = dataclasses.replace(segment, speaker=speaker)
            if segment.id in texts:
                text = texts[segment.id].strip()
                if text != segment.text:
                    # Word timings belong to the words the machine heard, not the new ones.
                    changed = dataclasses.replace(changed, text=text, words=(), tokens=())
            segments.append(changed)
        return dataclasses.replace(
            self, segments=tuple(segments), text=join_segment_texts(segments)
        )

    @property
    def speakers(self) -> tuple[str, ...]:
        """The distinct speaker labels, in the order they first speak."""
        return tuple(dict.fromkeys(s.speaker for s in self.segments if s.speaker))

"""Speakers on a synchronous transcription: OpenAI's ``gpt-4o-transcribe-diarize`` surface.

``response_format=diarized_json`` labels the transcript's segments with the bundled offline
diarization, through the batch core's own step (:func:`voxhelm.batch.diarize.diarize`) with
a sink that keeps nothing and stops when a streamed request's client has gone. Known
speakers (``known_speaker_names[]`` with ``known_speaker_references[]``, data URLs of 2-10 s
of each voice) become Voxhelm's voiceprints and name the segments they match.

The rules, OpenAI's where it has them:

* ``gpt-4o-transcribe-diarize`` answers ``json``, ``text`` (no speakers, no diarization run)
  or ``diarized_json``, and refuses ``prompt``; any other model may ask for
  ``diarized_json`` too (a Voxhelm extension: the model picks the speech-to-text engine).
* Known speakers need ``diarized_json``, one reference per name, at most four.
* A reference is a base64 data URL of at most :data:`MAX_REFERENCE_BYTES`, decoded like any
  upload, and 2-10 seconds long; every reference is checked before the media is decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voxhelm import audio, capacity
from voxhelm.api.schemas import DIARIZED_FORMAT, TranscriptionParams
from voxhelm.batch.diarize import diarize
from voxhelm.batch.request import DiarizationRequest, KnownSpeaker
from voxhelm.batch.sink import Artifact, Sink
from voxhelm.config import Config
from voxhelm.diarization.base import ANONYMOUS_STRATEGY, KNOWN_STRATEGY
from voxhelm.diarization.known import ReferenceClip
from voxhelm.errors import InvalidInput, MediaTooLong, PayloadTooLarge
from voxhelm.stt.registry import DIARIZE_ALIAS
from voxhelm.transcript import Transcript
from voxhelm.units import human_bytes

DIARIZE_FORMATS = ("json", "text", DIARIZED_FORMAT)
"""What ``gpt-4o-transcribe-diarize`` answers (OpenAI's list)."""
MAX_REFERENCE_BYTES = 2 * 1024 * 1024
"""A reference clip's decoded size: ten seconds of CD-quality stereo WAV is 1.7 MB, and
compressed formats are a fraction of that."""
MIN_REFERENCE_SECONDS = 2.0
MAX_REFERENCE_SECONDS = 10.0
ENCODER_GRACE_SECONDS = 0.1
"""Allowed beyond ten seconds: MP3 and AAC encoders pad a clip cut at exactly ten."""
REFERENCES = "known_speaker_references"
DATA_URL = re.compile(r"data:(?P<type>[^,;]*)(?P<params>(?:;[^,;]*)*),(?P<data>.*)", re.DOTALL)


@dataclass(frozen=True)
class Speakers:
    """A request's ask for speaker labels: the known speakers' names and data URLs."""

    names: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


def check(params: TranscriptionParams, config: Config) -> Speakers | None:
    """What the request asks of diarization (None: no labels), or InvalidInput naming the
    field that cannot be served. Cheap: the references are decoded later, off the loop."""
    wanted = params.response_format == DIARIZED_FORMAT
    if params.model == DIARIZE_ALIAS:
        if params.response_format not in DIARIZE_FORMATS:
            raise InvalidInput(
                f"{DIARIZE_ALIAS} answers json, text or diarized_json (speakers need "
                "diarized_json).",
                param="response_format",
            )
        if params.prompt is not None:
            raise InvalidInput("Prompt is not supported for diarization models.", param="prompt")
    names, references = params.known_speaker_names, params.known_speaker_references
    if (names or references) and not wanted:
        raise InvalidInput(
            "known_speaker_names[] needs response_format=diarized_json.",
            param="known_speaker_names",
        )
    if len(names) != len(references):
        raise InvalidInput(
            "known_speaker_references[] needs one reference per name in "
            f"known_speaker_names[] ({len(names)} names, {len(references)} references).",
            param=REFERENCES,
        )
    if not wanted:
        return None
    if config.diarization.backend == "none":
        raise InvalidInput(
            "Diarization was requested, but no diarization backend is configured. Ask for "
            "another response_format.",
            param="response_format",
            code="diarization_unavailable",
        )
    return Speakers(tuple(names), tuple(references))


def reference_clips(speakers: Speakers, config: Config) -> list[ReferenceClip]:
    """Every reference decoded; InvalidInput (or PayloadTooLarge) for one that cannot be
    used, before any other work. Runs on an inference thread."""
    return [
        ReferenceClip(name, _decode_reference(url, number, config))
        for number, (name, url) in enumerate(
            zip(speakers.names, speakers.references, strict=True), start=1
        )
    ]


def _decode_reference(url: str, number: int, config: Config) -> audio.Audio:
    which = f"known_speaker_references[{number}]"
    found = DATA_URL.fullmatch(url.strip())
    if found is None:
        raise InvalidInput(
            f"{which} must be a data URL (data:audio/wav;base64,...).", param=REFERENCES
        )
    if "base64" not in [part.strip().lower() for part in found["params"].split(";")]:
        raise InvalidInput(f"{which} must be base64 (data:<type>;base64,...).", param=REFERENCES)
    data = "".join(found["data"].split())  # some encoders wrap base64 in lines
    if len(data) // 4 * 3 > MAX_REFERENCE_BYTES + 3:  # before decoding any of it
        raise PayloadTooLarge(
            f"{which} exceeded the {human_bytes(MAX_REFERENCE_BYTES)} reference limit.",
            param=REFERENCES,
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{which} is not valid base64.", param=REFERENCES) from None
    limit = min(MAX_REFERENCE_SECONDS + ENCODER_GRACE_SECONDS, config.limits.max_audio_seconds)
    length = f"{which} must be between 2 and 10 seconds of speech."
    try:
        clip = audio.decode(io.BytesIO(raw), max_seconds=limit)
    except MediaTooLong:
        raise InvalidInput(length, param=REFERENCES) from None
    except InvalidInput as exc:
        raise InvalidInput(
            f"{which} could not be decoded as audio: {exc.message}", param=REFERENCES
        ) from None
    if clip.duration < MIN_REFERENCE_SECONDS:
        raise InvalidInput(length, param=REFERENCES)
    return clip


class RequestSink(Sink):
    """A request's sink: no progress to report and no artifact to keep (the answer is the
    transcript; the known-speaker sidecar is a job's); ``stop`` raises when the caller left."""

    def __init__(self, stop: Callable[[], None]) -> None:
        super().__init__(self)
        self._stop = stop

    def checkpoint(self, phase: str, percent: int, eta_seconds: float | None = None) -> None:
        self._stop()

    def keep(self, artifact: Artifact, data: bytes | Path) -> None:
        pass

    def load_checkpoint(self, name: str) -> bytes | None:
        return None

    def save_checkpoint(self, name: str, data: bytes) -> None:
        pass


def label(
    decoded: audio.Audio,
    transcript: Transcript,
    speakers: Speakers,
    clips: list[ReferenceClip],
    config: Config,
    *,
    stop: Callable[[], None],
) -> Transcript:
    """``transcript`` with a speaker on its segments: anonymous labels, or the names of the
    known speakers where their voiceprints match (else the anonymous label)."""
    known = tuple(KnownSpeaker(name, name, ()) for name in speakers.names)
    request = DiarizationRequest(
        enabled=True,
        strategy=KNOWN_STRATEGY if known else ANONYMOUS_STRATEGY,
        known_speakers=known,
        match={"label_transcript": True} if known else {},
    )
    diarized = diarize(
        request,
        RequestSink(stop),
        decoded,
        transcript,
        config,
        admission=capacity.SYNC,
        references=clips if known else None,
    )
    return diarized.transcript

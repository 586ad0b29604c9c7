"""The producer's speaker library: a named speaker of a corrected transcript saved as a
voiceprint, and library voices named in a later job's request resolved to their vectors.

A voice is saved from the job's own audio (the kept source, or a video's extracted track):
the stretches of the segments that the transcript gives that speaker, embedded with the
bundled CAM++ model the way known-speaker matching embeds a diarized speaker's turns
(:func:`voxhelm.diarization.known.voiceprint`). At submission a ``{"library": "Anna"}``
entry takes the saved vector into the stored request, so a worker (local or remote) needs
no database, and deleting the voice later does not break a queued job.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
from django.db import IntegrityError
from django.utils import timezone

from voxhelm import audio, capacity
from voxhelm.audio import SAMPLE_RATE
from voxhelm.batch.request import DiarizationRequest, KnownSpeaker
from voxhelm.config import Config
from voxhelm.diarization.embedding import model_version, shared_embedder
from voxhelm.diarization.known import voiceprint
from voxhelm.errors import InvalidInput, ServiceUnavailable
from voxhelm.jobs.corrections import current, unknown_speaker
from voxhelm.jobs.models import Job
from voxhelm.storage.base import CHUNK_BYTES, StoreError
from voxhelm.studio.models import LibrarySpeaker
from voxhelm.workdirs import Workdir

MIN_SPEECH_SECONDS = 2.0
LIBRARY_PARAM = "diarization.known_speakers[].library"


def save_speaker(
    producer: str, job: Job, speaker: str, name: str, config: Config
) -> tuple[LibrarySpeaker, bool]:
    """Save ``speaker`` of ``job``'s transcript as ``name`` in ``producer``'s library
    (replacing a voice of that name); returns the voice and whether it is new.

    Raises :class:`InvalidInput` for a speaker the transcript does not have or with too
    little speech, :class:`Conflict` for a job that is not a succeeded transcription.
    """
    transcript = current(job, config).transcript
    spans = [(s.start, s.end) for s in transcript.segments if s.speaker == speaker]
    if not spans:
        raise unknown_speaker(transcript, speaker, param="speaker")
    recording = _job_audio(job, config)
    pieces = [
        recording.samples[max(0, round(start * SAMPLE_RATE)) : round(end * SAMPLE_RATE)]
        for start, end in spans
        if end > start
    ]
    seconds = sum(len(piece) for piece in pieces) / SAMPLE_RATE
    if seconds < MIN_SPEECH_SECONDS:
        raise InvalidInput(
            f"{speaker!r} speaks for {seconds:.1f} s in this job; a voice needs at least "
            f"{MIN_SPEECH_SECONDS:.0f} s.",
            param="speaker",
            code="too_little_speech",
        )
    with capacity.model_work(config, capacity.SYNC):
        vector = voiceprint(audio.Audio(np.concatenate(pieces)), shared_embedder())
    if vector is None:
        raise InvalidInput(
            f"No speech of {speaker!r} could be embedded.",
            param="speaker",
            code="too_little_speech",
        )
    fields = {
        "voiceprint": [round(float(x), 6) for x in vector],
        "embedding_version": model_version(),
        "speech_seconds": round(seconds, 3),
        "source_job_id": job.pk,
    }
    try:
        return LibrarySpeaker.objects.update_or_create(
            producer=producer, name=name, defaults=fields
        )
    except IntegrityError:
        # A concurrent save of the same name created the row first: this one replaces it.
        updated = LibrarySpeaker.objects.filter(producer=producer, name=name).update(
            **fields, updated_at=timezone.now()
        )
        if not updated:
            raise
        return LibrarySpeaker.objects.get(producer=producer, name=name), False


def _job_audio(job: Job, config: Config) -> audio.Audio:
    """The job's recording, decoded: a video's extracted track, else the kept source."""
    artifacts = job.artifacts.filter(kind__in=("extracted_audio", "source"))
    artifact = artifacts.filter(kind="extracted_audio").first() or artifacts.first()
    if artifact is None:
        raise InvalidInput("This job kept no recording to take a voice from.", code="no_audio")
    with Workdir("refs") as folder:
        path = folder / "recording"
        try:
            with artifact.open(config.artifacts) as stored, path.open("wb") as out:
                shutil.copyfileobj(stored, out, CHUNK_BYTES)
        except StoreError:
            raise ServiceUnavailable(
                "The recording could not be read from the artifact store. Try again.",
                code="store_unavailable",
            ) from None
        return audio.decode(path, max_seconds=config.limits.max_audio_seconds)


def resolve_library_speakers(producer: str, diarization: DiarizationRequest) -> DiarizationRequest:
    """``diarization`` with every library voice of ``producer`` given its saved vector;
    raises :class:`InvalidInput` (400) for a name the library does not have."""
    if not diarization.known or not any(s.library for s in diarization.known_speakers):
        return diarization
    names = {s.library for s in diarization.known_speakers if s.library}
    saved = {
        voice.name: voice
        for voice in LibrarySpeaker.objects.for_producer(producer).filter(name__in=names)
    }

    def resolved(speaker: KnownSpeaker) -> KnownSpeaker:
        if not speaker.library:
            return speaker
        voice = saved.get(speaker.library)
        if voice is None:
            raise InvalidInput(
                f"Your speaker library has no voice named {speaker.library!r} "
                "(GET /v1/speakers lists them).",
                param=LIBRARY_PARAM,
                code="unknown_library_speaker",
            )
        return replace(
            speaker,
            voiceprint=tuple(float(x) for x in voice.voiceprint),
            embedding_version=voice.embedding_version,
        )

    return replace(
        diarization, known_speakers=tuple(resolved(s) for s in diarization.known_speakers)
    )

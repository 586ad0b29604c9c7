"""The diarization step of the batch core: speaker labels on the transcript, or for
known speakers the ``transcript.speakers.json`` sidecar. Framework-free: the server's
pipeline and ``voxhelm-remote-worker`` both run it.

It runs after transcription on the same decoded audio, under the non-interactive lane and a
process-wide mutex. Any failure of anonymous diarization fails the job (never a silently
unlabeled transcript). Reference audio of known speakers is fetched with the guarded fetcher
(URLs) or read from the artifact store and verified (staged uploads); neither URLs nor
storage keys appear in artifacts, metadata or error messages.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxhelm import audio, capacity
from voxhelm.batch.inputs import batch_fetch_policy
from voxhelm.batch.request import DiarizationRequest, KnownSpeaker, ReferenceAudio
from voxhelm.batch.sink import DIARIZE, DIARIZING, Artifact, Sink
from voxhelm.config import Config
from voxhelm.diarization.align import label_transcript, normalize_turns
from voxhelm.diarization.base import DiarizationError, SpeakerHints, Turn
from voxhelm.diarization.embedding import shared_embedder
from voxhelm.diarization.known import (
    MATCH_FIELDS,
    MatchOptions,
    ReferenceClip,
    SavedVoice,
    identify,
    library_voiceprints,
    reference_voiceprints,
    sidecar,
)
from voxhelm.diarization.registry import diarizer
from voxhelm.errors import InvalidInput
from voxhelm.fetch import FetchPolicy, fetch_to_file
from voxhelm.formats.encoding import dump_artifact_json
from voxhelm.storage.base import CHUNK_BYTES, StoreError
from voxhelm.storage.stores import store_for_identity
from voxhelm.transcript import Transcript
from voxhelm.workdirs import Workdir

logger = logging.getLogger("voxhelm.diarization")

SPEAKERS_ARTIFACT = "transcript.speakers.json"
SPEAKERS = Artifact(
    SPEAKERS_ARTIFACT, "transcript_speakers", "speakers", "application/json", exposed=True
)


@dataclass(frozen=True)
class Diarized:
    """The transcript to render and, for known speakers, the sidecar's summary."""

    transcript: Transcript
    known_speaker_summary: dict[str, Any] | None = None


def diarize(
    request: DiarizationRequest,
    sink: Sink,
    decoded: audio.Audio,
    transcript: Transcript,
    config: Config,
    *,
    admission: capacity.Admission = capacity.BATCH,
    references: Sequence[ReferenceClip] | None = None,
) -> Diarized:
    """Apply a job's ``diarization`` request to ``transcript`` (a no-op when disabled).

    ``admission``: how long the model work may wait for its slot and the diarization lock
    (a job long, a request only the configured lane wait); ``references``: the known
    speakers' clips already decoded (a sync request's data URLs), instead of reading the
    request's references.

    Raises :class:`DiarizationError` when anonymous diarization fails or the known-speaker
    references cannot be used.
    """
    if not request.enabled:
        return Diarized(transcript)
    sink.checkpoint(DIARIZING, DIARIZE)
    hints = SpeakerHints(request.num_speakers, request.min_speakers, request.max_speakers)
    if request.known:
        document, transcript = _known_speakers(
            decoded, transcript, request, hints, config, admission=admission, references=references
        )
        sink.put(SPEAKERS, dump_artifact_json(document), phase=DIARIZING, percent=DIARIZE)
        return Diarized(transcript, document["summary"])
    if not transcript.segments:  # nothing was said that could carry a label
        return Diarized(transcript)
    turns = speaker_turns(decoded, hints, config, admission)
    return Diarized(label_transcript(transcript, turns))


def speaker_turns(
    decoded: audio.Audio,
    hints: SpeakerHints,
    config: Config,
    admission: capacity.Admission = capacity.BATCH,
) -> list[Turn]:
    """Normalized turns from the configured engine, admitted like other model work."""
    engine = diarizer(config.diarization)
    with capacity.model_work(config, admission):
        turns = engine.diarize(decoded, hints)
    return normalize_turns(turns)


def _known_speakers(
    decoded: audio.Audio,
    transcript: Transcript,
    request: DiarizationRequest,
    hints: SpeakerHints,
    config: Config,
    *,
    admission: capacity.Admission,
    references: Sequence[ReferenceClip] | None,
) -> tuple[dict[str, Any], Transcript]:
    """The sidecar, and the transcript cut where the speaker changes as anonymous labels
    cut it (the sidecar's indexes are its segments). When asked, each segment is labeled
    with its confident name, else its anonymous speaker (``Speaker 2``), else none."""
    options = MatchOptions(**{k: v for k, v in request.match.items() if k in MATCH_FIELDS})
    embedder = shared_embedder()
    clips = (
        list(references)
        if references is not None
        else _reference_clips(request.known_speakers, config)
    )
    saved = library_voiceprints(
        [
            SavedVoice(s.name, s.library, s.voiceprint, s.embedding_version)
            for s in request.known_speakers
            if s.library
        ]
    )
    # Embeddings are model work too: gated like diarization (the reference did not).
    with capacity.model_work(config, admission):
        prints = reference_voiceprints(clips, embedder, saved)
    turns: list[Turn] | None
    try:
        turns = speaker_turns(decoded, hints, config, admission)
    except DiarizationError as exc:
        # Anonymous turns only help here (voiceprints per speaker); segments match alone.
        logger.info("known-speaker job: no anonymous turns (%s)", exc.code)
        turns = None
    with capacity.model_work(config, admission):
        identified = identify(
            transcript,
            audio=decoded,
            turns=turns,
            prints=prints,
            embedder=embedder,
            options=options,
        )
    document = sidecar(identified.matches, request.names, options, raw_available=turns is not None)
    cut = identified.transcript
    labels: list[str | None] = [None] * len(cut.segments)
    if request.labels_transcript:
        labels = [e["speaker"] or e["raw_diarization_speaker"] for e in document["segments"]]
    return document, cut.with_speakers(labels)


def _reference_clips(speakers: tuple[KnownSpeaker, ...], config: Config) -> list[ReferenceClip]:
    """Every reference cut to its range; each URL or staged upload is read once."""
    policy = batch_fetch_policy(config)
    decoded: dict[tuple[str, str], audio.Audio] = {}
    clips = []
    with Workdir("refs") as folder:
        for speaker in speakers:
            for reference in speaker.references:
                source = reference.audio
                stored = source.kind == "stored"  # a staged upload (jobs.reference_uploads)
                key = ("stored", source.upload_id) if stored else ("url", source.url)
                if key not in decoded:
                    decoded[key] = (
                        _read_stored_reference(source, folder, config)
                        if stored
                        else _fetch_reference(source.url, policy, folder, config)
                    )
                clip = decoded[key]
                if reference.kind == "source_range":
                    first = round((reference.start or 0.0) * clip.sample_rate)
                    last = round((reference.end or 0.0) * clip.sample_rate)
                    clip = audio.Audio(clip.samples[first:last], clip.sample_rate)
                clips.append(ReferenceClip(speaker.name, clip))
    return clips


def _read_stored_reference(source: ReferenceAudio, folder: Path, config: Config) -> audio.Audio:
    """A staged upload's clip, read from the store it was staged in and verified."""
    path = folder / "stored-reference"
    try:
        store = store_for_identity(source.storage_identity, config.artifacts)
        with (
            store.open_verified(source.storage_key, source.sha256, source.size_bytes) as stored,
            path.open("wb") as out,
        ):
            shutil.copyfileobj(stored, out, CHUNK_BYTES)
        return audio.decode(path, max_seconds=config.limits.max_audio_seconds)
    except InvalidInput as exc:
        raise DiarizationError(
            f"Known-speaker reference audio could not be used: {exc.message}",
            code="reference_audio_failed",
        ) from None
    except (StoreError, OSError) as exc:
        # Logged for the operator; the client learns neither the key nor the store's error.
        logger.warning("reference upload %s unreadable: %s", source.upload_id, exc)
        raise DiarizationError(
            "Known-speaker reference audio could not be used: the uploaded clip "
            f"{source.upload_id} is no longer available.",
            code="reference_audio_failed",
        ) from None
    finally:
        path.unlink(missing_ok=True)


def _fetch_reference(url: str, policy: FetchPolicy, folder: Path, config: Config) -> audio.Audio:
    try:
        fetched = fetch_to_file(url, policy, folder)
        try:
            return audio.decode(fetched.path, max_seconds=config.limits.max_audio_seconds)
        finally:
            fetched.path.unlink(missing_ok=True)
    except InvalidInput as exc:
        # The fetcher's and decoder's messages never name the URL; keep it that way.
        raise DiarizationError(
            f"Known-speaker reference audio could not be used: {exc.message}",
            code="reference_audio_failed",
        ) from None

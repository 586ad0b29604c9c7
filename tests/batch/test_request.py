"""The typed job request: every stored form reads and writes back byte for byte (key order
included), and the request answers through its attributes what code used to look up."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.jobs.test_stored_json import GOLDEN
from voxhelm.batch.request import (
    DiarizationRequest,
    JobOutputs,
    JobRequest,
    SynthesisRequest,
    UploadSource,
    UrlSource,
    source_from_stored,
)

UPLOAD_ID = "5d0c2f36-5a6e-4a51-9c51-3f5f0e0a9b77"
URL_REFERENCE = {"kind": "url", "url": "https://media.example.com/alice.wav"}
UPLOAD_REFERENCE = {"kind": "upload", "upload_id": UPLOAD_ID}
STORED_REFERENCE = {  # jobs.reference_uploads writes it at submission
    "kind": "stored",
    "upload_id": UPLOAD_ID,
    "storage_key": "voxhelm/uploads/5d/5d0c2f36",
    "storage_identity": {"backend": "s3", "bucket": "media", "endpoint": "http://[::1]:8333"},
    "sha256": "ab" * 32,
    "size_bytes": 48044,
}


def known(*audios: dict[str, Any], **counts: int) -> dict[str, Any]:
    """A stored known-speaker request (key order as diarization_options writes it)."""
    references: list[dict[str, Any]] = [{"kind": "clip_artifact", "audio": a} for a in audios]
    references.append({"kind": "source_range", "audio": audios[0], "start": 1.0, "end": 4.5})
    speaker = {"id": "a", "name": "Alice", "references": references}
    return {
        "enabled": True,
        **counts,
        "strategy": "pyannote_known_speaker",
        "known_speakers": [speaker],
    }


INPUTS = {
    **{
        f"golden-{name}": golden["input_data"]
        for name, golden in GOLDEN.items()
        if name != "synthesis"  # a text input: test_a_synthesis_request_round_trips
    },
    "upload-before-attach": {"kind": "upload", "upload_id": UPLOAD_ID},
    "upload-attached": {
        "kind": "upload",
        "upload_id": UPLOAD_ID,
        "filename": "lighthouse.wav",
        "content_type": "audio/wav",
        "size_bytes": 48044,
    },
    "sync-console-upload": {"kind": "upload", "filename": "speech.wav", "content_type": ""},
}
DIARIZATIONS = {
    "off": {"enabled": False},
    "anonymous": {"enabled": True, "min_speakers": 2},
    "anonymous-exact": {"enabled": True, "num_speakers": 3},
    "known-url-ranged": {
        **known(URL_REFERENCE, num_speakers=2),
        "known_speaker": {"embedding_model": "campplus", "min_top_similarity": 0.5},
    },
    "known-upload": known(UPLOAD_REFERENCE),
    "known-stored": known(STORED_REFERENCE, URL_REFERENCE),
    "known-without-speakers": {
        "enabled": True,
        "strategy": "pyannote_known_speaker",
        "known_speakers": [],
    },
}
OUTPUTS = {
    **{
        f"golden-{name}": golden["output_data"]
        for name, golden in GOLDEN.items()
        if name != "synthesis"
    },
    **{name: {"formats": ["json"], "diarization": d} for name, d in DIARIZATIONS.items()},
    "old-row-without-diarization": {"formats": ["text", "srt"]},
    "old-row-without-formats": {"diarization": {"enabled": False}},
    "old-row-without-either": {},
}


def same(written: object, stored: object) -> None:
    assert json.dumps(written) == json.dumps(stored)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_every_stored_input_round_trips(name: str) -> None:
    same(source_from_stored(INPUTS[name]).to_stored(), INPUTS[name])


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_every_stored_output_round_trips(name: str) -> None:
    same(JobOutputs.from_stored(OUTPUTS[name]).to_stored(), OUTPUTS[name])


def test_a_synthesis_request_round_trips() -> None:
    golden = GOLDEN["synthesis"]
    request = SynthesisRequest.from_stored(golden["input_data"], golden["output_data"])
    assert (request.text, request.voice, request.speed) == ("Hello there.", "en_US-joe-medium", 1.0)
    same(request.input_data(), golden["input_data"])
    same(request.output_data(), golden["output_data"])


def test_the_sources_read_as_their_kind() -> None:
    attached = source_from_stored(INPUTS["upload-attached"])
    assert attached == UploadSource(UPLOAD_ID, "lighthouse.wav", "audio/wav", 48044)
    console = source_from_stored(INPUTS["sync-console-upload"])
    assert isinstance(console, UploadSource) and console.upload_id is None
    url = source_from_stored(GOLDEN["url"]["input_data"])
    assert url == UrlSource("https://media.example.com/episode.mp3") and url.kind == "url"


def test_an_old_row_reads_as_no_diarization_and_no_formats() -> None:
    outputs = JobOutputs.from_stored({})
    assert outputs.formats == () and outputs.diarization == DiarizationRequest()
    assert not outputs.diarization.enabled and not outputs.diarization.wants_word_timestamps


def test_a_known_speaker_request_reads_through_its_attributes() -> None:
    request = DiarizationRequest.from_stored(DIARIZATIONS["known-stored"])
    assert request.known and request.wants_word_timestamps  # cut at speaker changes too
    assert request.names == ["Alice"]
    assert request.reference_urls() == [URL_REFERENCE["url"]]
    stored, _url, ranged = request.known_speakers[0].references
    assert (stored.audio.kind, stored.audio.storage_key) == (
        "stored",
        STORED_REFERENCE["storage_key"],
    )
    assert (ranged.kind, ranged.start, ranged.end) == ("source_range", 1.0, 4.5)
    hinted = DiarizationRequest.from_stored(DIARIZATIONS["known-url-ranged"])
    assert hinted.counts() == {"num_speakers": 2} and hinted.match["min_top_similarity"] == 0.5


def test_a_claim_names_the_strategy_and_reads_back_as_the_same_request() -> None:
    for name, stored in DIARIZATIONS.items():
        request = DiarizationRequest.from_stored(stored)
        claim = request.to_claim()
        assert DiarizationRequest.from_stored(claim) == request, name
        if stored["enabled"]:
            assert claim["strategy"] in ("pyannote", "pyannote_known_speaker"), name
    same(
        DiarizationRequest.from_stored(DIARIZATIONS["anonymous"]).to_claim(),
        {"enabled": True, "min_speakers": 2, "strategy": "pyannote"},
    )
    same(DiarizationRequest().to_claim(), {"enabled": False})


def test_job_metadata_shows_no_reference_audio() -> None:
    request = DiarizationRequest.from_stored(DIARIZATIONS["known-stored"])
    shown = request.public({"segment_count": 3})
    same(
        shown,
        {
            "enabled": True,
            "strategy": "pyannote_known_speaker",
            "known_speakers": [{"id": "a", "name": "Alice", "reference_count": 3}],
            "known_speaker_summary": {"segment_count": 3},
        },
    )
    assert DiarizationRequest.from_stored(DIARIZATIONS["anonymous"]).public() == {
        "enabled": True,
        "min_speakers": 2,
    }


def test_the_fingerprint_fields_are_the_submitted_request() -> None:
    request = JobRequest(
        UploadSource(UPLOAD_ID),
        JobOutputs(("vtt", "json"), DiarizationRequest.from_stored(DIARIZATIONS["known-upload"])),
        model="tiny.en",
    )
    assert request.fingerprint_fields("transcribe", "auto") == {
        "job_type": "transcribe",
        "backend": "auto",
        "model": "tiny.en",
        "language": "",
        "input": {"kind": "upload", "upload_id": UPLOAD_ID},
        "formats": ["json", "vtt"],
        "diarization": DIARIZATIONS["known-upload"],
    }

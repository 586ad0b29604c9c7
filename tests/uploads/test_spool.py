"""Multipart files too large for memory go to a work folder, removed when the request ends."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile, SimpleUploadedFile
from django.core.handlers.wsgi import WSGIRequest
from django.test import RequestFactory

from tests.speech import SENTENCES, synthesize
from voxhelm import audio
from voxhelm.uploads.spool import SpooledUpload
from voxhelm.workdirs import LOCK_NAME, sweep

SENTENCE = SENTENCES[0]


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def post(data: bytes) -> WSGIRequest:
    upload = SimpleUploadedFile("long.wav", data, content_type="audio/wav")
    return RequestFactory().post("/v1/audio/transcriptions", {"file": upload, "model": "x"})


def test_it_spools_a_large_file_to_a_work_folder_until_the_request_ends(temp_dir: Path) -> None:
    speech = synthesize(SENTENCE, pause_seconds=60.0)
    data = speech.wav_bytes()
    assert len(data) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    request = post(data)
    upload = request.FILES["file"]
    assert isinstance(upload, SpooledUpload)
    folder = Path(upload.temporary_file_path()).parent
    assert folder.parent == temp_dir
    assert folder.name.startswith("voxhelm-upload-")
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME, "upload"]
    assert (upload.size, (folder / "upload").read_bytes()) == (len(data), data)
    # The sync view decodes the file object as it is (and casts it the same way).
    assert audio.decode(cast(BinaryIO, upload)).duration == pytest.approx(speech.duration, abs=0.05)
    assert sweep(temp_dir).folders == 0  # its owner lives
    request.close()  # Django does this when the response ends
    assert list(temp_dir.iterdir()) == []


def test_it_keeps_a_small_file_in_memory(temp_dir: Path) -> None:
    request = post(b"RIFF" + bytes(4092))
    assert isinstance(request.FILES["file"], InMemoryUploadedFile)
    assert list(temp_dir.iterdir()) == []

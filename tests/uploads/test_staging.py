"""``POST /v1/uploads`` on each artifact store: the file streams into the store, bad input is
refused before or while it arrives, and a refused upload leaves nothing behind."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest

from tests.conftest import make_config
from tests.media import speech_in
from tests.speech import synthesize
from tests.stores import list_keys
from tests.uploads.conftest import SENTENCE, UploadsApi
from voxhelm.config import Config
from voxhelm.storage.stores import active_store
from voxhelm.uploads.models import StagedUpload
from voxhelm.uploads.staging import looks_like_text, safe_filename, staged_key


def staged(config: Config) -> list[str]:
    return list_keys(config, "voxhelm/staged-inputs")


def test_it_stages_audio_into_the_store(api: UploadsApi, config: Config, speech_wav: bytes) -> None:
    response = api.stage(speech_wav, filename="Episode 12.wav")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id", "object", "filename", "content_type", "size_bytes", "created_at", "expires_at"
    }  # fmt: skip
    assert (body["object"], body["filename"], body["content_type"]) == (
        "staged_media", "Episode 12.wav", "audio/wav"
    )  # fmt: skip
    assert body["size_bytes"] == len(speech_wav)
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(hours=24)
    row = StagedUpload.objects.get(pk=body["id"])
    assert row.producer == "archive"
    assert row.storage_key == f"voxhelm/staged-inputs/{body['id']}/Episode 12.wav"
    assert row.storage_identity == active_store(config.artifacts).identity()
    assert row.sha256 == hashlib.sha256(speech_wav).hexdigest()
    with active_store(config.artifacts).open(row.storage_key) as stream:
        assert stream.read() == speech_wav
    assert staged(config) == [row.storage_key]


def test_it_stages_video_too(api: UploadsApi) -> None:
    video = speech_in("mp4", synthesize(SENTENCE))
    response = api.stage(video, filename="interview.mp4", content_type="video/mp4")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("filename", "content_type", "data", "message"),
    [
        ("notes.txt", "text/plain", b"\x00\x01binary", "Unsupported uploaded media type"),
        ("payload", "application/octet-stream", b"\x00\x01", "Unsupported uploaded media type"),
        (
            "playlist.mp3",
            "audio/mpeg",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:10\nhttp://169.254.169.254/latest\n" * 20,
            "not audio or video",
        ),
        ("page.wav", "audio/wav", b"<html><body>hello</body></html>", "not audio or video"),
        ("empty.wav", "audio/wav", b"", "empty"),
    ],
)
def test_it_refuses_what_is_not_media_and_keeps_nothing(
    api: UploadsApi,
    config: Config,
    filename: str,
    content_type: str,
    data: bytes,
    message: str,
) -> None:
    response = api.stage(data, filename=filename, content_type=content_type)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert message in error["message"]
    assert error["param"] == "file"
    assert staged(config) == []
    assert not StagedUpload.objects.exists()


def test_a_file_over_the_cap_is_refused_while_streaming(
    api: UploadsApi, configure: object, store_env: dict[str, str], speech_wav: bytes
) -> None:
    config = configure(VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES="100000", **store_env)  # type: ignore[operator]
    response = api.stage(speech_wav + b"\x00" * 200_000)
    assert response.status_code == 413
    message = response.json()["error"]["message"]
    assert message == "Uploaded file exceeded the configured 97.7 KiB batch staging limit."
    assert staged(config) == []
    assert not StagedUpload.objects.exists()


def test_it_needs_multipart_a_file_field_and_a_token(api: UploadsApi, speech_wav: bytes) -> None:
    response = api.client.post(
        "/v1/uploads", b"{}", content_type="application/json", headers=api.auth("test-token")
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Batch upload staging requires multipart/form-data."
    )
    response = api.client.post("/v1/uploads", {"other": "x"}, headers=api.auth("test-token"))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"
    assert api.stage(speech_wav, token=None).status_code == 401
    assert api.stage(speech_wav, token="wrong").status_code == 401
    assert not StagedUpload.objects.exists()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\talk.mp3", "talk.mp3"),
        ("..", "upload"),
        ("", "upload"),
        (".hidden.wav", "hidden.wav"),
        (".voxhelm-tmp-x.wav", "voxhelm-tmp-x.wav"),
        ("a\x00b\nc.wav", "abc.wav"),
        ("x" * 300 + ".flac", "x" * 195 + ".flac"),
    ],
)
def test_file_names_become_one_safe_key_segment(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


def test_an_empty_prefix_never_makes_an_absolute_key() -> None:
    import uuid

    upload_id = uuid.UUID(int=1)
    assert staged_key("", upload_id, "a.wav") == f"staged-inputs/{upload_id}/a.wav"
    assert staged_key("/studio/", upload_id, "a.wav") == f"studio/staged-inputs/{upload_id}/a.wav"


def test_text_sniffing_tells_playlists_from_media(speech_wav: bytes) -> None:
    assert looks_like_text(b"#EXTM3U\nfile.mp3\n")
    assert looks_like_text("Grüße\n".encode())
    assert not looks_like_text(speech_wav[:512])
    assert not looks_like_text(speech_in("mp3", synthesize("Hello there."))[:512])
    assert not looks_like_text(b"")


def test_the_settings_default_to_the_reference_values() -> None:
    limits = make_config().limits
    assert limits.batch_max_staged_upload_bytes == 512 * 1024 * 1024
    assert limits.staged_input_retention_seconds == 86400

"""The inference pool runs work off the event loop and refuses work beyond its queue."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests.speech import synthesize
from voxhelm.capacity import InferencePool, inference_pool
from voxhelm.errors import Busy


def test_it_refuses_work_beyond_running_plus_waiting() -> None:
    pool = InferencePool(max_workers=1, max_waiting=1)
    release = threading.Event()
    first = pool.submit(release.wait)
    second = pool.submit(lambda: "queued")
    with pytest.raises(Busy) as caught:
        pool.submit(lambda: "refused")
    assert caught.value.retry_after >= 1
    release.set()
    assert first.result(timeout=5) is True
    assert second.result(timeout=5) == "queued"
    assert pool.submit(lambda: "again").result(timeout=5) == "again"


def test_it_runs_work_on_a_thread_other_than_the_event_loop() -> None:
    pool = InferencePool(max_workers=1, max_waiting=0)

    async def main() -> tuple[int, int]:
        loop_thread = threading.get_ident()
        worker_thread = await pool.run(threading.get_ident)
        return loop_thread, worker_thread

    loop_thread, worker_thread = asyncio.run(main())
    assert loop_thread != worker_thread


def test_the_transcription_endpoint_answers_429_when_the_pool_is_full(
    configure: Any, client: Any, auth_headers: dict[str, str]
) -> None:
    configure(VOXHELM_STT_MAX_CONCURRENCY="1", VOXHELM_STT_MAX_WAITING="0")
    pool = inference_pool(1, 0)
    release = threading.Event()
    blocker = pool.submit(release.wait)
    try:
        clip = synthesize("Please turn on the kitchen lights.")
        response = client.post(
            "/v1/audio/transcriptions",
            {"model": "whisper-1", "file": _upload(clip.wav_bytes())},
            headers=auth_headers,
        )
    finally:
        release.set()
        blocker.result(timeout=5)
    assert response.status_code == 429
    assert response["Retry-After"] == "2"
    assert response.json()["error"]["type"] == "rate_limit_error"


def _upload(data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("clip.wav", data, content_type="audio/wav")

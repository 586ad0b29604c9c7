"""``stream=true`` on POST /v1/audio/transcriptions: OpenAI's events, over real HTTP.

The server is the session's real ``voxhelm serve`` (bundled tiny.en, lane scheduler on, so
long audio runs window by window); the client is the official ``openai`` package.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest
from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent

from tests.api.scrape import scrape, value
from tests.conftest import PRODUCER_TOKEN, ServerProcess
from tests.media import speech_in
from tests.speech import BOOK, Speech, passage, synthesize, word_error_rate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON of each ``data:`` line of a server-sent event stream."""
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


def test_the_openai_client_streams_deltas_then_the_whole_text(oai: openai.OpenAI) -> None:
    speech = passage()
    stream = oai.audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", speech.wav_bytes()), stream=True
    )
    events = list(stream)
    deltas = [e for e in events if isinstance(e, TranscriptionTextDeltaEvent)]
    assert isinstance(events[-1], TranscriptionTextDoneEvent)
    assert len(deltas) == len(events) - 1 >= 2  # a delta per segment, the done event last
    done = events[-1]
    assert "".join(d.delta for d in deltas) == done.text
    assert word_error_rate(speech.text, done.text) <= 0.10, done.text
    assert done.languages is not None
    assert [language.code for language in done.languages] == ["en"]


def test_it_streams_a_json_url_request(server: ServerProcess) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    body = speech_in("mp3", clip)

    class Media(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Media)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/clip.mp3"
        with (
            server.client() as client,
            client.stream(
                "POST",
                "/v1/audio/transcriptions",
                json={"model": "whisper-1", "url": url, "stream": True},
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            events = list(sse_events(response.iter_lines()))
    finally:
        httpd.shutdown()
    assert [e["type"] for e in events][-1] == "transcript.text.done"
    assert {e["type"] for e in events[:-1]} == {"transcript.text.delta"}
    assert "kitchen" in events[-1]["text"].lower()


def test_errors_before_the_first_event_are_json_envelopes(oai: openai.OpenAI) -> None:
    clip = synthesize("Please turn on the kitchen lights.")
    # The English-only model refuses German only once the audio is decoded and the engine
    # runs: still before the first event, so still an ordinary 400.
    with pytest.raises(openai.BadRequestError) as refused:
        oai.audio.transcriptions.create(
            model="whisper-1", file=("clip.wav", clip.wav_bytes()), language="de", stream=True
        )
    assert refused.value.response.headers["Content-Type"] == "application/json"
    assert refused.value.code == "unsupported_language"
    with pytest.raises(openai.BadRequestError) as wrong_format:
        oai.audio.transcriptions.create(
            model="whisper-1",
            file=("clip.wav", clip.wav_bytes()),
            response_format="srt",
            stream=True,
        )
    assert wrong_format.value.param == "response_format"


def test_a_client_that_disconnects_stops_the_transcription(server: ServerProcess) -> None:
    book = passage(BOOK, pause_seconds=0.6)
    # About two minutes of speech: five 30-second windows, each its own engine call.
    long = Speech(
        text=f"{book.text} {book.text}",
        samples=np.concatenate([book.samples, book.samples]),
        sample_rate=book.sample_rate,
    )
    before = scrape(server)
    audio_before = value(before, "voxhelm_stt_audio_seconds_total", backend="fasterwhisper")
    canceled_before = value(before, "voxhelm_stt_streams_canceled_total")

    with (
        server.client() as client,
        client.stream(
            "POST",
            "/v1/audio/transcriptions",
            files={"file": ("long.mp3", speech_in("mp3", long))},
            data={"model": "whisper-1", "stream": "true"},
        ) as response,
    ):
        assert response.status_code == 200
        first = next(sse_events(response.iter_lines()))
        assert first["type"] == "transcript.text.delta"
        # Leaving the with-block closes the connection mid-stream.
    left = time.monotonic()

    deadline = left + 20
    while time.monotonic() < deadline:
        samples = scrape(server)
        if value(samples, "voxhelm_inference_in_flight") == 0 and server.slot_is_free():
            break
        time.sleep(0.1)
    else:
        pytest.fail("the transcription went on after the client left")
    stopped_after = time.monotonic() - left
    time.sleep(1.0)  # a transcription still going would take the slot for its next window
    assert server.slot_is_free()

    after = scrape(server)
    done = value(after, "voxhelm_stt_audio_seconds_total", backend="fasterwhisper") - audio_before
    # The engine stopped at the first segment after the disconnect: in the first window or
    # the second, never the rest (engine calls that were stopped count no audio).
    assert done <= long.duration / 2, (done, long.duration)
    assert value(after, "voxhelm_stt_streams_canceled_total") == canceled_before + 1
    assert value(after, "voxhelm_inference_in_flight") == 0
    assert stopped_after < 15
    assert "streamed transcription stopped: the client disconnected" in server.log()

"""The console's use of the operator's saved voices: only those today's speaker model can
compare name speakers; one saved with other weights is left out and marked, not fatal."""

from __future__ import annotations

from django.test import Client

from tests.console.conftest import post_console
from voxhelm.diarization.embedding import model_version
from voxhelm.jobs.models import Job
from voxhelm.studio.models import LibrarySpeaker

PRODUCER = "operator:olivia"
OLD_VERSION = "campplus:000000000000"  # a vector from weights this server no longer has


def save(name: str, version: str) -> None:
    LibrarySpeaker.objects.create(
        producer=PRODUCER,
        name=name,
        voiceprint=[1.0] + [0.0] * 191,
        embedding_version=version,
        speech_seconds=12.0,
    )


def test_a_voice_from_other_weights_is_left_out_of_a_diarized_job(
    operator_client: Client,
) -> None:
    save("Anna", model_version())
    save("Old", OLD_VERSION)
    response = post_console(
        operator_client, video_url="https://media.example.com/show.mp4", diarization="on"
    )
    assert response.status_code == 302, response.content
    diarization = Job.objects.get().output_data["diarization"]
    assert [voice["name"] for voice in diarization["known_speakers"]] == ["Anna"]


def test_with_only_stale_voices_the_job_diarizes_without_names(operator_client: Client) -> None:
    save("Old", OLD_VERSION)
    post_console(operator_client, video_url="https://media.example.com/show.mp4", diarization="on")
    diarization = Job.objects.get().output_data["diarization"]
    assert diarization["enabled"] and not diarization.get("known_speakers")


def test_the_speakers_page_marks_a_voice_it_will_not_use(operator_client: Client) -> None:
    save("Anna", model_version())
    save("Old", OLD_VERSION)
    page = operator_client.get("/speakers").content.decode()
    assert page.count("saved with another speaker model") == 1
    assert page.index("Old") < page.index("saved with another speaker model")

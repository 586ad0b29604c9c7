"""The stored form of a job's request, value for value: the redesign that types the request
(issue 24) must write exactly what today's code writes, so rows written before and after it
read the same, and the request fingerprint (task_ref idempotency) stays what it was. Each
golden was taken from the code before the redesign."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jobs.conftest import JobsApi, job_body
from tests.jobs.test_diarization_options import known
from voxhelm.jobs.models import Job

CASES: dict[str, dict[str, Any]] = {
    "url": job_body(output={"formats": ["vtt", "text", "json"]}, language="de", task_ref="t1"),
    "url-diarized": job_body(
        output={"formats": ["json", "srt"]},
        diarization={"enabled": True, "min_speakers": 2, "max_speakers": 4},
        prompt="Voxhelm",
        priority="high",
    ),
    "url-known-speakers": job_body(
        output={"formats": ["dote", "podlove"]},
        diarization=known(known_speaker={"auto_accept_margin": 0.1}),
    ),
    "synthesis": {
        "job_type": "synthesize",
        "input": {"kind": "text", "text": "Hello there."},
        "output": {"formats": ["wav", "mp3"]},
    },
}


def stored(job: Job) -> dict[str, Any]:
    # Compared as values: PostgreSQL's jsonb keeps no key order (the suite also runs there).
    return {
        "input_data": job.input_data,
        "output_data": job.output_data,
        "fingerprint": job.request_fingerprint,
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_submission_is_stored_as_before(api: JobsApi, case: str) -> None:
    response = api.submit(CASES[case])
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert stored(job) == GOLDEN[case]


GOLDEN: dict[str, dict[str, Any]] = {
    "synthesis": {
        "input_data": {"kind": "text", "text": "Hello there."},
        "output_data": {"formats": ["wav", "mp3"], "voice": "en_US-joe-medium", "speed": 1.0},
        "fingerprint": "99af9b392dd2698c9f48f50eb8da3c24ec9d140dbf8803926a18595a75bc1296",
    },
    "url": {
        "input_data": {"kind": "url", "url": "https://media.example.com/episode.mp3"},
        "output_data": {"formats": ["vtt", "text", "json"], "diarization": {"enabled": False}},
        "fingerprint": "84ed05825fc9643c05dab413af22d89ed2aeb953e80a7df1363b6dca2dc42e56",
    },
    "url-diarized": {
        "input_data": {"kind": "url", "url": "https://media.example.com/episode.mp3"},
        "output_data": {
            "formats": ["json", "srt"],
            "diarization": {"enabled": True, "min_speakers": 2, "max_speakers": 4},
        },
        "fingerprint": "0c4820deaae309bbf1bbcf1fd728d07361e3a791958cae531d2b36400cfa0787",
    },
    "url-known-speakers": {
        "input_data": {"kind": "url", "url": "https://media.example.com/episode.mp3"},
        "output_data": {
            "formats": ["dote", "podlove"],
            "diarization": {
                "enabled": True,
                "strategy": "pyannote_known_speaker",
                "known_speakers": [
                    {
                        "id": "a",
                        "name": "Alice",
                        "references": [
                            {
                                "kind": "clip_artifact",
                                "audio": {
                                    "kind": "url",
                                    "url": "https://media.example.com/alice.wav",
                                },
                            }
                        ],
                    }
                ],
                "known_speaker": {"auto_accept_margin": 0.1},
            },
        },
        "fingerprint": "c37a315c3e3d23011b743b6269b503fbc191ea0533c7febdee3aecf36b366db7",
    },
}

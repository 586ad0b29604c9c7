"""The job list, deletion and download names on a real ``voxhelm serve``, with the official
openai client, on the filesystem store and on a real S3 server (SeaweedFS).

Each store gets its own server (and so its own database): the list holds exactly the jobs
made here. Synthesis jobs are quick real jobs; one short recording is really transcribed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import openai
import pytest
from openai.pagination import SyncCursorPage

from tests.conftest import PRODUCER_TOKEN, ServerProcess, start_server
from tests.jobs.media_server import MediaServer, serve_media
from tests.s3server import S3Server
from tests.speech import passage

pytestmark = pytest.mark.slow

STEM = "Grüße aus Köln"
STEM_PATH = "/Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln.wav"
ALL_FORMATS = ["text", "json", "vtt", "srt", "dote", "podlove"]


class JobItem(openai.BaseModel):
    id: str
    object: str
    state: str
    job_type: str
    task_ref: str | None = None


class Deleted(openai.BaseModel):
    id: str
    object: str
    deleted: bool


@dataclass
class Studio:
    server: ServerProcess
    store: str
    s3: S3Server | None
    bucket: str
    oai: openai.OpenAI
    http: httpx.Client
    jobs: dict[str, str]  # task_ref -> id, in submission order

    def keys(self, job_id: str) -> list[str]:
        """Every object of the job in the store, whatever its folder."""
        if self.s3 is not None:
            client: Any = self.s3.client()
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        else:
            root = self.server.var_dir / "artifacts"
            keys = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
        return [key for key in keys if job_id in key]


def wait_done(http: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with serve_media() as server:
        server.add(STEM_PATH, "audio/wav", passage().wav_bytes())
        yield server


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def studio(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    media: MediaServer,
) -> Iterator[Studio]:
    env = {"VOXHELM_ALLOWED_URL_HOSTS": "127.0.0.1:*", "VOXHELM_TRUSTED_HTTP_HOSTS": "127.0.0.1"}
    s3, bucket = None, ""
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        bucket = s3.new_bucket()
        env.update(s3.env(bucket))
    server = start_server(tmp_path_factory.mktemp(f"studio-{request.param}"), env)
    http = server.client()
    jobs: dict[str, str] = {}

    def submit(task_ref: str, body: dict[str, Any]) -> None:
        response = http.post("/v1/jobs", json={**body, "task_ref": task_ref})
        assert response.status_code == 201, response.text
        jobs[task_ref] = response.json()["id"]

    speech = {"job_type": "synthesize", "input": {"kind": "text", "text": "Welcome back."}}
    submit("intro-1", {**speech, "output": {"formats": ["mp3", "wav"]}})
    submit(
        "episode-1",
        {
            "job_type": "transcribe",
            "input": {"kind": "url", "url": media.url(STEM_PATH)},
            "output": {"formats": ALL_FORMATS},
        },
    )
    submit(
        "missing-1",
        {"job_type": "transcribe", "input": {"kind": "url", "url": media.url("/gone.wav")}},
    )
    for index in range(2, 5):
        submit(f"intro-{index}", speech)
    for job_id in jobs.values():
        wait_done(http, job_id)
    oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=PRODUCER_TOKEN, max_retries=0)
    yield Studio(server, request.param, s3, bucket, oai, http, jobs)
    http.close()
    server.stop()


def listing(studio: Studio, **params: Any) -> list[JobItem]:
    page = studio.oai.get_api_list(
        "/jobs", model=JobItem, page=SyncCursorPage[JobItem], options={"params": params}
    )
    return list(page)  # the client follows has_more with after=<last id>


def test_the_openai_client_pages_through_every_job_newest_first(studio: Studio) -> None:
    first = studio.oai.get_api_list(
        "/jobs", model=JobItem, page=SyncCursorPage[JobItem], options={"params": {"limit": 2}}
    )
    assert [job.id for job in first.data] == list(studio.jobs.values())[::-1][:2]
    assert first.has_more is True
    every = listing(studio, limit=2)
    assert [job.task_ref for job in every] == list(studio.jobs)[::-1]
    assert all(job.object == "job" for job in every)


def test_filters_narrow_the_list(studio: Studio) -> None:
    assert [job.task_ref for job in listing(studio, state="failed")] == ["missing-1"]
    succeeded = {job.task_ref for job in listing(studio, state="succeeded", job_type="transcribe")}
    assert succeeded == {"episode-1"}
    assert len(listing(studio, job_type="synthesize")) == 4
    assert [job.task_ref for job in listing(studio, task_ref="intro-3")] == ["intro-3"]
    assert listing(studio, created_before=0) == []
    assert len(listing(studio, created_after="2000-01-01T00:00:00Z")) == 6


def test_a_bad_or_unknown_parameter_is_a_400_envelope(studio: Studio) -> None:
    for params, param in (({"states": "failed"}, "states"), ({"limit": 500}, "limit")):
        with pytest.raises(openai.BadRequestError) as caught:
            listing(studio, **params)
        assert caught.value.status_code == 400
        body: Any = caught.value.body
        assert body["param"] == param and body["type"] == "invalid_request_error"


def test_each_download_is_named_after_its_source(studio: Studio) -> None:
    job = studio.http.get(f"/v1/jobs/{studio.jobs['episode-1']}").json()
    assert job["state"] == "succeeded", job
    names = {}
    for fmt, url in job["result"]["artifacts"].items():
        header = studio.http.get(url).headers["Content-Disposition"]
        fallback, _, encoded = header.partition("; filename*=UTF-8''")
        assert fallback.startswith('attachment; filename="') and header.isascii()
        names[fmt] = unquote(encoded, errors="strict")
    assert names == {
        "text": f"{STEM}.txt",
        "json": f"{STEM}.json",
        "vtt": f"{STEM}.vtt",
        "srt": f"{STEM}.srt",
        "dote": f"{STEM}.dote.json",
        "podlove": f"{STEM}.podlove.json",
    }
    speech_id = studio.jobs["intro-1"]
    speech = studio.http.get(f"/v1/jobs/{speech_id}").json()["result"]["artifacts"]
    for fmt, url in speech.items():
        assert studio.http.get(url).headers["Content-Disposition"] == (
            f'attachment; filename="{speech_id}.{fmt}"'
        )


def test_delete_removes_a_finished_job_from_the_store(studio: Studio) -> None:
    job_id = studio.jobs["intro-4"]
    assert len(studio.keys(job_id)) >= 1  # the artifacts are there to delete
    deleted = studio.oai.delete(f"/jobs/{job_id}", cast_to=Deleted)
    assert (deleted.id, deleted.object, deleted.deleted) == (job_id, "job.deleted", True)
    assert studio.keys(job_id) == []
    with pytest.raises(openai.NotFoundError):
        studio.oai.get(f"/jobs/{job_id}", cast_to=JobItem)
    assert job_id not in {job.id for job in listing(studio)}


def test_a_running_job_must_be_canceled_before_it_is_deleted(
    studio: Studio, media: MediaServer
) -> None:
    created = studio.http.post(
        "/v1/jobs",
        json={"job_type": "transcribe", "input": {"kind": "url", "url": media.url(STEM_PATH)}},
    ).json()
    with pytest.raises(openai.ConflictError) as caught:
        studio.oai.delete(f"/jobs/{created['id']}", cast_to=Deleted)
    body: Any = caught.value.body
    assert body["code"] == "job_not_finished" and "cancel it first" in body["message"]
    assert studio.http.post(f"/v1/jobs/{created['id']}/cancel").status_code == 200
    assert studio.oai.delete(f"/jobs/{created['id']}", cast_to=Deleted).deleted is True
    # The canceled attempt stops at its next step; what it wrote meanwhile goes when it does.
    deadline = time.monotonic() + 60
    while studio.keys(created["id"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert studio.keys(created["id"]) == []

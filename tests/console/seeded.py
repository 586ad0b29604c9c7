"""Seed a finished transcription into a running test server's database, in a process of its
own (``voxhelm manage shell``), as the pipeline would leave it: a succeeded job with its
source audio and a ``transcript.json``, announced so that the search index has it.

Used where the test needs a transcript cut exactly so (Whisper's fragments cannot be chosen:
the model's output is the one thing a browser test cannot make real on demand). The job id
is printed. Inputs come from the environment: ``SEED_OPERATOR``, ``SEED_WAV`` (a file),
``SEED_SEGMENTS`` (a JSON list of ``{"start", "end", "text"}``), ``SEED_NAME``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from voxhelm.artifacts.models import JobArtifact
from voxhelm.jobs.models import DispatchMode, Job, JobState
from voxhelm.jobs.signals import transcript_changed


def main() -> None:
    config = settings.VOXHELM
    name = os.environ["SEED_NAME"]
    segments = json.loads(os.environ["SEED_SEGMENTS"])
    job = Job.objects.create(
        producer=f"operator:{os.environ['SEED_OPERATOR']}",
        request_fingerprint="seeded",
        dispatch_mode=DispatchMode.SYNC,
        input_data={"kind": "upload", "filename": name, "content_type": "audio/wav"},
        output_data={"formats": ["json"]},
        state=JobState.SUCCEEDED,
        progress=100,
        result_text=" ".join(segment["text"] for segment in segments),
        finished_at=timezone.now(),
    )
    JobArtifact.objects.put(
        job,
        "source.wav",
        kind="source",
        format="",
        content_type="audio/wav",
        exposed=False,
        data=Path(os.environ["SEED_WAV"]),
        config=config.artifacts,
    )
    document = {
        "task": "transcribe",
        "language": "en",
        "text": job.result_text,
        "segments": [{"id": index, "seek": 0, **item} for index, item in enumerate(segments)],
    }
    JobArtifact.objects.put(
        job,
        "transcript.json",
        kind="transcript_json",
        format="json",
        content_type="application/json",
        exposed=True,
        data=json.dumps(document).encode(),
        config=config.artifacts,
    )
    transcript_changed.send(sender=Job, job=job)
    print(job.pk)

"""``GET /metrics``: Prometheus exposition, for a scraper holding ``VOXHELM_METRICS_TOKEN``.

Off (404) while no metrics token is set; a producer or worker token is not accepted, so a
scraper's credential opens nothing else and a producer sees nothing of other producers.
Besides what each part records as it works (:mod:`voxhelm.metrics`), a scrape reads the
job counts by state from the database and this process's loaded models and inference
threads. With ``PROMETHEUS_MULTIPROC_DIR`` set, the recorded metrics of every process
sharing that directory are added up (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from voxhelm import __version__, capacity
from voxhelm.edge.rules import BodyRule, declare_body
from voxhelm.jobs.models import Job, JobState, JobType
from voxhelm.stt.registry import ENGINES
from voxhelm.tokens import bearer_from_header

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable


def collect_runtime() -> Iterator[Metric]:
    """This process's state: version, loaded models, inference calls in flight."""
    info = GaugeMetricFamily("voxhelm_build_info", "Voxhelm version.", labels=["version"])
    info.add_metric([__version__], 1)
    yield info
    loaded = GaugeMetricFamily(
        "voxhelm_models_loaded",
        "STT models resident in this process (1 each); pinned ones are never unloaded.",
        labels=["backend", "model", "pinned"],
    )
    idle = GaugeMetricFamily(
        "voxhelm_model_idle_seconds",
        "Seconds since a resident STT model was last used (0 while in use).",
        labels=["backend", "model"],
    )
    for resident in ENGINES.resident(settings.VOXHELM.stt):
        loaded.add_metric([resident.backend, resident.model, str(resident.pinned).lower()], 1)
        idle.add_metric([resident.backend, resident.model], resident.idle_seconds)
    yield loaded
    yield idle
    yield GaugeMetricFamily(
        "voxhelm_inference_in_flight",
        "Synchronous transcriptions and speech responses running or queued on this "
        "process's inference threads.",
        value=capacity.in_flight(),
    )


def collect_jobs() -> Iterator[Metric]:
    """Batch jobs by state and type, counted in the database at scrape time."""
    counts = Job.objects.count_by_state()
    jobs = GaugeMetricFamily("voxhelm_jobs", "Batch jobs by state.", labels=["state", "job_type"])
    types = sorted({job_type for _, job_type in counts} | {JobType.TRANSCRIBE.value})
    for state in JobState.values:
        for job_type in types:
            jobs.add_metric([state, job_type], counts.get((state, job_type), 0))
    yield jobs


class _Scrape:
    """Everything one scrape shows; only ``collect`` is called (no describe, no caching)."""

    def collect(self) -> Iterable[Metric]:
        if os.environ.get(MULTIPROCESS_ENV):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            yield from merged.collect()
        else:
            yield from REGISTRY.collect()
        yield from collect_runtime()
        yield from collect_jobs()


_REGISTRY = CollectorRegistry()
_REGISTRY.register(_Scrape())


def _plain(status: int, text: str, **headers: str) -> HttpResponse:
    content_type = "text/plain; charset=utf-8"
    return HttpResponse(text + "\n", status=status, content_type=content_type, headers=headers)


@declare_body(BodyRule("metrics", "none"))
@csrf_exempt
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    expected = settings.VOXHELM.auth.metrics_token
    if not expected:
        return _plain(404, "Not found. Set VOXHELM_METRICS_TOKEN to enable /metrics.")
    presented = bearer_from_header(request.headers.get("Authorization")) or ""
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        return _plain(401, "Invalid or missing metrics token.", **{"WWW-Authenticate": "Bearer"})
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(_REGISTRY), content_type=content_type)

"""``GET /v1/health``: version, the default STT engine's readiness and the STT models loaded
in this process; ``GET /v1/health/live``: liveness for anyone, one word long."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from voxhelm import __version__
from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import Operation
from voxhelm.api.schemas import EngineStatus, HealthResponse, LivenessResponse, LoadedModel
from voxhelm.stt.base import EngineState
from voxhelm.stt.base import EngineStatus as SttEngineStatus
from voxhelm.stt.registry import ENGINES, resolve


def default_engine_status() -> SttEngineStatus:
    """The default STT engine's state, without loading it (no database, no model work:
    this answers at once while inference runs)."""
    stt_config = settings.VOXHELM.stt
    primary = resolve("auto", stt_config)[0]
    return ENGINES.get(primary, stt_config).status()


@Operation(
    "/v1/health",
    "get",
    "Service health and STT engine readiness",
    "health",
    responses={200: HealthResponse},
    errors=(401,),
)
@api_view(["GET"], auth="any")
async def health(request: HttpRequest) -> JsonResponse:
    engine = default_engine_status()
    body = HealthResponse(
        status="degraded" if engine.state == EngineState.UNAVAILABLE else "ok",
        version=__version__,
        stt=EngineStatus(
            backend=engine.backend,
            model=engine.model,
            state=engine.state.value,
            reason=engine.reason,
        ),
        models=[
            LoadedModel(
                backend=resident.backend,
                model=resident.model,
                idle_seconds=round(resident.idle_seconds, 1),
                pinned=resident.pinned,
            )
            for resident in ENGINES.resident(settings.VOXHELM.stt)
        ],
    )
    return JsonResponse(body.model_dump())


@Operation(
    "/v1/health/live",
    "get",
    "Liveness for container and load balancer probes (no token)",
    "health",
    responses={200: LivenessResponse, 503: LivenessResponse},
    secured=False,
    errors=(),
)
@api_view(["GET"], auth="none")
async def live(request: HttpRequest) -> JsonResponse:
    # Anyone on the network may ask, so the answer names nothing: no version, no model, no
    # count. 503 when the default engine cannot load (a CUDA image without a GPU), so a
    # probe takes such a process out instead of it failing every request.
    if default_engine_status().state == EngineState.UNAVAILABLE:
        return JsonResponse(LivenessResponse(status="degraded").model_dump(), status=503)
    return JsonResponse(LivenessResponse(status="ok").model_dump())

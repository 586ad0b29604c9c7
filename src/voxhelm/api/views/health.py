"""``GET /v1/health``: liveness, version, the default STT engine's readiness and the STT
models loaded in this process."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from voxhelm import __version__
from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import Operation, operation
from voxhelm.api.schemas import EngineStatus, HealthResponse, LoadedModel
from voxhelm.stt.base import EngineState
from voxhelm.stt.registry import ENGINES, resolve


@operation(
    Operation(
        "/v1/health",
        "get",
        "Service health and STT engine readiness",
        "health",
        responses={200: HealthResponse},
        errors=(401,),
    )
)
@api_view(["GET"], auth="any")
async def health(request: HttpRequest) -> JsonResponse:
    # No database and no model work here: this answers at once while inference runs.
    stt_config = settings.VOXHELM.stt
    primary = resolve("auto", stt_config)[0]
    engine = ENGINES.get(primary, stt_config).status()
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
            for resident in ENGINES.resident(stt_config)
        ],
    )
    return JsonResponse(body.model_dump())

"""``GET /v1/models`` and ``GET /v1/models/<id>``: the transcription model names a request may use.

OpenAI's shape, so official clients list and retrieve them, plus a ``voxhelm`` object per
model: the engine that serves it, the concrete model an alias stands for, and whether that
engine can run here.
"""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel, Field

from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import Operation, operation
from voxhelm.config import SttConfig
from voxhelm.errors import NotFound
from voxhelm.stt.base import EngineState
from voxhelm.stt.registry import ENGINES, accepted_models, resolve


class ModelDetails(BaseModel):
    backend: str = Field(description="The engine that serves this name (for an alias: first).")
    alias_of: str | None = Field(description="The concrete model an alias resolves to.")
    available: bool = Field(description="Whether that engine can run on this server now.")


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "voxhelm"
    voxhelm: ModelDetails


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


def describe(name: str, config: SttConfig) -> ModelObject:
    invocation = resolve(name, config)[0]
    status = ENGINES.get(invocation, config).status()
    return ModelObject(
        id=name,
        voxhelm=ModelDetails(
            backend=invocation.backend,
            alias_of=invocation.model if invocation.model != name else None,
            available=status.state != EngineState.UNAVAILABLE,
        ),
    )


@operation(
    Operation(
        "/v1/models",
        "get",
        "List the transcription models (OpenAI-compatible)",
        "models",
        responses={200: ModelList},
        errors=(401,),
    )
)
@api_view(["GET"])
async def list_models(request: HttpRequest) -> JsonResponse:
    config: SttConfig = settings.VOXHELM.stt
    body = ModelList(data=[describe(name, config) for name in accepted_models(config)])
    return JsonResponse(body.model_dump())


@operation(
    Operation(
        "/v1/models/{model}",
        "get",
        "Retrieve one transcription model (OpenAI-compatible)",
        "models",
        responses={200: ModelObject},
        errors=(401, 404),
        parameters=[
            {
                "name": "model",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "A model id from /v1/models (may contain '/').",
            }
        ],
    )
)
@api_view(["GET"])
async def retrieve_model(request: HttpRequest, model: str) -> JsonResponse:
    config: SttConfig = settings.VOXHELM.stt
    if model not in accepted_models(config):
        raise NotFound(f"The model '{model}' does not exist.", code="model_not_found")
    return JsonResponse(describe(model, config).model_dump())

"""``GET /v1/models`` and ``GET /v1/models/<id>``: the transcription models this server can use.

OpenAI's shape, so official clients list and retrieve them (a model picker shows only what
works), plus a ``voxhelm`` object per model: the engine that serves it, the concrete model an
alias stands for, whether it can run here, whether it is installed, its size and languages.
``?all=true`` adds the models that cannot serve here (known but not installed, or an engine
this machine lacks) with the reason.
"""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel, Field

from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import Operation, parameter
from voxhelm.config import Config
from voxhelm.errors import InvalidInput, NotFound
from voxhelm.modelcache.catalogue import Kind
from voxhelm.modelstore.listing import Entry, entries
from voxhelm.stt.base import EngineState
from voxhelm.stt.registry import DIARIZE_ALIAS, ENGINES, accepted_models, resolve


class ModelDetails(BaseModel):
    backend: str = Field(description="The engine that serves this name (for an alias: first).")
    alias_of: str | None = Field(description="The concrete model an alias resolves to.")
    available: bool = Field(description="Whether it can serve on this server now.")
    installed: bool = Field(description="Whether its files are on this server.")
    size_bytes: int | None = Field(
        description="Its size on disk (not installed: about what a pull downloads)."
    )
    languages: list[str] = Field(description="Languages it transcribes ([] when unknown).")
    reason: str | None = Field(description="Why it cannot serve here (only with ?all=true).")


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "voxhelm"
    voxhelm: ModelDetails


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


def describe(name: str, config: Config, store: dict[str, Entry]) -> ModelObject:
    """A request model name as listed; ``store`` holds the model store's entries by name."""
    invocation = resolve(name, config.stt)[0]
    entry = store.get(invocation.model)
    status = ENGINES.get(invocation, config.stt).status()
    available = status.state != EngineState.UNAVAILABLE and (entry is None or entry.serves)
    reason = None
    if not available:
        # The engine's own reason may name paths: only the store's, or a generic one.
        reason = (entry.reason_for_clients if entry else None) or (
            f"the {invocation.backend} engine cannot run on this server"
        )
    return ModelObject(
        id=name,
        voxhelm=ModelDetails(
            backend=invocation.backend,
            alias_of=invocation.model if invocation.model != name else None,
            available=available,
            installed=entry.installed is not None if entry else available,
            size_bytes=entry.size_bytes if entry else None,
            languages=list(entry.languages) if entry else [],
            reason=reason,
        ),
    )


def from_store(entry: Entry) -> ModelObject:
    """A model the store knows but no configuration names (not installed, as a rule)."""
    return ModelObject(
        id=entry.name,
        voxhelm=ModelDetails(
            backend=entry.engine,
            alias_of=None,
            available=False,
            installed=entry.installed is not None,
            size_bytes=entry.size_bytes,
            languages=list(entry.languages),
            reason=entry.reason_for_clients,
        ),
    )


def catalogue(config: Config, *, include_all: bool) -> list[ModelObject]:
    """What the list shows, by name: serving models, and with ``include_all`` the rest."""
    store = {e.name: e for e in entries(config, include_all=True) if e.kind != Kind.PIPER}
    names = accepted_models(config.stt)
    if config.diarization.backend != "none":  # only a transcription takes it: not in the table
        names.append(DIARIZE_ALIAS)
    models = {name: describe(name, config, store) for name in names}
    if include_all:
        for name, entry in store.items():
            models.setdefault(name, from_store(entry))
    listed = [m for m in models.values() if include_all or m.voxhelm.available]
    return sorted(listed, key=lambda m: m.id)


def include_all(request: HttpRequest) -> bool:
    value = request.GET.get("all", "false").strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidInput("all must be true or false.", param="all", code="invalid_value")
    return value in ("true", "1")


@Operation(
    "/v1/models",
    "get",
    "List the transcription models (OpenAI-compatible)",
    "models",
    responses={200: ModelList},
    errors=(400, 401),
    parameters=[
        parameter(
            "all",
            "query",
            {"type": "boolean", "default": False},
            "Also list models that cannot serve here, with the reason.",
            required=False,
        )
    ],
)
@api_view(["GET"])
async def list_models(request: HttpRequest) -> JsonResponse:
    body = ModelList(data=catalogue(settings.VOXHELM, include_all=include_all(request)))
    return JsonResponse(body.model_dump())


@Operation(
    "/v1/models/{model}",
    "get",
    "Retrieve one transcription model (OpenAI-compatible)",
    "models",
    responses={200: ModelObject},
    errors=(401, 404),
    parameters=[
        parameter(
            "model",
            "path",
            {"type": "string"},
            "A model id from /v1/models?all=true (may contain '/').",
            required=True,
        )
    ],
)
@api_view(["GET"])
async def retrieve_model(request: HttpRequest, model: str) -> JsonResponse:
    found = next((m for m in catalogue(settings.VOXHELM, include_all=True) if m.id == model), None)
    if found is None:
        raise NotFound(f"The model '{model}' does not exist.", code="model_not_found")
    return JsonResponse(found.model_dump())

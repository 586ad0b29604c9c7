"""The OpenAPI 3.1 document at ``/v1/openapi.json``, assembled from registered operations.

Views register themselves with ``operation(...)``; their bodies are pydantic models, so the
schema and the validation cannot drift apart. Every model, nested ones included, is generated
once into ``components/schemas``, so each ``$ref`` resolves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from voxhelm import __version__
from voxhelm.api.schemas import ErrorEnvelope

F = TypeVar("F", bound=Callable[..., Any])

ERROR_STATUSES = {
    400: "Invalid request",
    401: "Missing or invalid bearer token",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    429: "Too many requests; retry after the Retry-After header",
    500: "Internal error (the message names an error id)",
    503: "Engine unavailable",
}

REF = "#/components/schemas/{model}"

Raw = dict[str, Any]
"""A schema written by hand: a file part, a binary download, plain text."""


@dataclass(frozen=True)
class OneOf:
    """A body that is one of ``models`` (a transcript as json or verbose_json, say)."""

    models: tuple[type[BaseModel], ...]
    description: str = ""


Content = Mapping[str, type[BaseModel] | OneOf | Raw]
"""Media type -> schema. Models here are copied inline (a form's fields are read where the
form is described); the models they nest are references."""

Body = type[BaseModel] | Content
"""A model alone is an ``application/json`` body, referenced from ``components``."""


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    tag: str
    responses: dict[int, Body | None]
    request_body: Body | None = None
    secured: bool = True
    errors: tuple[int, ...] = (400, 401, 500)
    parameters: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, view: F) -> F:
        """Decorating a view with an operation registers it for the document."""
        _OPERATIONS[(self.path, self.method.lower())] = self
        return view


def parameter(
    name: str, where: str, schema: Raw, description: str = "", *, required: bool | None = None
) -> Raw:
    """One entry of ``Operation.parameters``: a ``path`` or ``query`` parameter."""
    spec: Raw = {"name": name, "in": where}
    if required is not None:
        spec["required"] = required
    spec["schema"] = schema
    if description:
        spec["description"] = description
    return spec


_OPERATIONS: dict[tuple[str, str], Operation] = {}


def _models(body: Body | None) -> Iterator[type[BaseModel]]:
    if body is None:
        return
    for schema in [body] if isinstance(body, type) else body.values():
        if isinstance(schema, OneOf):
            yield from schema.models
        elif isinstance(schema, type):
            yield schema


class _Schemas:
    """Every model's JSON schema, generated in one pass: requests as pydantic validates
    them, responses as it serializes them (pydantic names the two apart if they differ)."""

    def __init__(self, operations: list[Operation]) -> None:
        pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
        for op in operations:
            pairs += [(m, "validation") for m in _models(op.request_body)]
            pairs += [(m, "serialization") for b in op.responses.values() for m in _models(b)]
        self.refs, top = models_json_schema(list(dict.fromkeys(pairs)), ref_template=REF)
        self.components: dict[str, Raw] = top.get("$defs", {})

    def inline(self, schema: type[BaseModel] | OneOf | Raw, mode: JsonSchemaMode) -> Raw:
        if isinstance(schema, OneOf):
            options = [self.inline(model, mode) for model in schema.models]
            described = {"description": schema.description} if schema.description else {}
            return {**described, "oneOf": options}
        if isinstance(schema, type):
            name = self.refs[(schema, mode)]["$ref"].rpartition("/")[2]
            return self.components[name]
        return schema

    def content(self, body: Body, mode: JsonSchemaMode) -> dict[str, Any]:
        if isinstance(body, type):
            return {"application/json": {"schema": self.refs[(body, mode)]}}
        return {media: {"schema": self.inline(schema, mode)} for media, schema in body.items()}


def _operation_id(method: str, path: str) -> str:
    cleaned = path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    return f"{method}_{cleaned}"


def document() -> dict[str, Any]:
    """Build the OpenAPI document from every registered operation."""
    schemas = _Schemas(list(_OPERATIONS.values()))
    paths: dict[str, dict[str, Any]] = {}
    error_ref = schemas.refs[(ErrorEnvelope, "serialization")]
    for (path, method), op in sorted(_OPERATIONS.items()):
        responses: dict[str, Any] = {}
        for status, body in op.responses.items():
            entry: dict[str, Any] = {"description": "OK" if status < 300 else "Response"}
            if body is not None:
                entry["content"] = schemas.content(body, "serialization")
            responses[str(status)] = entry
        for status in op.errors:
            responses.setdefault(
                str(status),
                {
                    "description": ERROR_STATUSES.get(status, "Error"),
                    "content": {"application/json": {"schema": error_ref}},
                },
            )
        spec: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": _operation_id(method, path),
            "responses": responses,
        }
        if op.parameters:
            spec["parameters"] = op.parameters
        if op.request_body is not None:
            spec["requestBody"] = {
                "required": True,
                "content": schemas.content(op.request_body, "validation"),
            }
        spec["security"] = [{"bearer": []}] if op.secured else []
        paths.setdefault(path, {})[method] = spec
    return {
        "openapi": "3.1.0",
        "info": {"title": "Voxhelm", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

"""The OpenAPI 3 document at ``/v1/openapi.json``, assembled from registered operations.

Views register themselves with ``operation(...)``; their bodies are pydantic models, so the
schema and the validation cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

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


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    tag: str
    responses: dict[int, type[BaseModel] | dict[str, Any] | None]
    request_body: type[BaseModel] | dict[str, Any] | None = None
    secured: bool = True
    errors: tuple[int, ...] = (400, 401, 500)
    parameters: list[dict[str, Any]] = field(default_factory=list)


_OPERATIONS: dict[tuple[str, str], Operation] = {}


def operation(op: Operation) -> Callable[[F], F]:
    """Register ``op`` for the document; returns the view unchanged."""

    def register(view: F) -> F:
        _OPERATIONS[(op.path, op.method.lower())] = op
        return view

    return register


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _content(body: type[BaseModel] | dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return body  # already a content map (multipart, text, audio...)
    return {"application/json": {"schema": _schema_ref(body, components)}}


def _operation_id(method: str, path: str) -> str:
    cleaned = path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    return f"{method}_{cleaned}"


def document() -> dict[str, Any]:
    """Build the OpenAPI document from every registered operation."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    error_ref = _schema_ref(ErrorEnvelope, components)
    for (path, method), op in sorted(_OPERATIONS.items()):
        responses: dict[str, Any] = {}
        for status, body in op.responses.items():
            entry: dict[str, Any] = {"description": "OK" if status < 300 else "Response"}
            if body is not None:
                entry["content"] = _content(body, components)
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
                "content": _content(op.request_body, components),
            }
        spec["security"] = [{"bearer": []}] if op.secured else []
        paths.setdefault(path, {})[method] = spec
    return {
        "openapi": "3.1.0",
        "info": {"title": "Voxhelm", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

"""Request validation with pydantic models; failures become 400s naming the field."""

from __future__ import annotations

from typing import Any, TypeVar

from django.http import HttpRequest
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from voxhelm import boundedjson
from voxhelm.api.errors import ApiError, invalid_request

M = TypeVar("M", bound=BaseModel)

EXACT_ERROR = "voxhelm_exact"


def exact(message: str) -> PydanticCustomError:
    """A validation error (raise it in a validator) whose message the client sees verbatim."""
    # The message goes in as context, so braces in user input are never read as placeholders.
    return PydanticCustomError(EXACT_ERROR, "{message}", {"message": message})


def _message(error: dict[str, Any]) -> tuple[str, str | None]:
    loc = error.get("loc") or ()
    field = ".".join(str(part) for part in loc) or None
    if error.get("type") == EXACT_ERROR:
        return str(error.get("msg")), field
    if error.get("type") == "missing":
        return f"The '{field}' field is required.", field
    if error.get("type") == "extra_forbidden":
        return f"Unknown field '{field}'.", field
    message = str(error.get("msg", "Invalid value."))
    message = message.removeprefix("Value error, ")
    if field and field not in message:
        message = f"Invalid '{field}': {message}"
    if not message.endswith("."):
        message += "."
    return message, field


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` into ``model`` or raise a 400 ApiError for the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field = _message(exc.errors()[0])  # type: ignore[arg-type]
        raise invalid_request(message, param=field) from None


def json_object(
    body: bytes, *, not_object: str = "JSON request body must be an object."
) -> dict[str, Any]:
    """Decode a JSON object body within ``voxhelm.boundedjson``'s bounds: bad UTF-8, bad
    JSON, nesting past 32 levels, unholdable numbers and lone surrogates are each a 400
    ``invalid_json`` (an ``InvalidJson``, mapped in ``voxhelm.api.errors``), never a 500."""
    return boundedjson.decode_object(body, not_object=not_object)


def json_body(
    request: HttpRequest, action: str, *, not_object: str = "JSON request body must be an object."
) -> dict[str, Any]:
    """The request's JSON object body (:func:`json_object`); another content type is a 400
    saying that ``action`` (``"Speech synthesis"``) requires ``application/json``."""
    if not (request.content_type or "").startswith("application/json"):
        raise invalid_request(
            f"{action} requires application/json.", code="unsupported_content_type"
        )
    return json_object(request.body, not_object=not_object)


__all__ = ["ApiError", "exact", "json_body", "json_object", "parse"]

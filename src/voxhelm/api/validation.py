"""Request validation with pydantic models; failures become 400s naming the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from voxhelm.api.errors import ApiError, invalid_request

M = TypeVar("M", bound=BaseModel)


def _message(error: dict[str, Any]) -> tuple[str, str | None]:
    loc = error.get("loc") or ()
    field = ".".join(str(part) for part in loc) or None
    if error.get("type") == "missing":
        return f"The '{field}' field is required.", field
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


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body; bad UTF-8 or JSON is a 400, never a 500."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("Request body was not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid_request("JSON request body must be an object.", code="invalid_json")
    return data


__all__ = ["ApiError", "json_object", "parse"]

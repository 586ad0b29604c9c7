"""The core's exception hierarchy: errors whose message is safe to show to a client.

Domain code raises these without knowing HTTP; ``voxhelm.api.errors`` maps them to the
OpenAI error envelope in one place. Anything else that escapes is an internal error: it is
logged with an id and the client only sees the id.
"""

from __future__ import annotations


class VoxhelmError(Exception):
    """Base class. ``message`` is shown to the client; ``code`` is a stable machine name."""

    code = "voxhelm_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param


class InvalidInput(VoxhelmError):
    """The request itself is wrong (HTTP 400)."""

    code = "invalid_request"


class UnsupportedMedia(InvalidInput):
    """The media cannot be decoded, is empty, or uses a refused container."""

    code = "unsupported_media"


class MediaTooLong(InvalidInput):
    """The media is longer than ``VOXHELM_MAX_AUDIO_SECONDS``."""

    code = "audio_too_long"


class InvalidJson(InvalidInput, ValueError):
    """A JSON document is malformed or outside the bounds of ``voxhelm.boundedjson``.

    Also a ``ValueError``, as ``json.loads``'s own errors are, so readers of stored
    documents (checkpoints, artifacts) that treat a damaged one as missing keep doing so.
    """

    code = "invalid_json"


class PayloadTooLarge(InvalidInput):
    """The request body is over its size limit (HTTP 413)."""

    code = "payload_too_large"


class NotFound(VoxhelmError):
    """A named resource does not exist or belongs to someone else (HTTP 404)."""

    code = "not_found"


class Conflict(VoxhelmError):
    """The request conflicts with the current state of a resource (HTTP 409)."""

    code = "conflict"


class Busy(VoxhelmError):
    """Capacity is exhausted right now; retry later (HTTP 429 with Retry-After)."""

    code = "busy"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ServiceUnavailable(VoxhelmError):
    """A required engine cannot serve at all right now (HTTP 503)."""

    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after

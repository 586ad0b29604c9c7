"""Bearer tokens: reading one from an ``Authorization`` header and matching it in constant time.

Framework-free, so the ASGI edge can refuse a stranger before Django (or the body) is
involved, with the same rules the API views apply afterwards. Tokens are never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

BEARER_PREFIX = "Bearer "


def match_token(presented: str, tokens: Mapping[str, str]) -> str | None:
    """Return the label whose token equals ``presented``, or None.

    Every configured token is compared, so the time taken does not depend on which one (or
    whether one) matches.
    """
    presented_bytes = presented.encode("utf-8")
    found: str | None = None
    for label, token in tokens.items():
        if hmac.compare_digest(presented_bytes, token.encode("utf-8")) and found is None:
            found = label
    return found


def bearer_from_header(header: str | None) -> str | None:
    if not header or not header.startswith(BEARER_PREFIX):
        return None
    value = header[len(BEARER_PREFIX) :].strip()
    return value or None

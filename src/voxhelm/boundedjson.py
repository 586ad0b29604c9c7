"""Decoding JSON that comes from outside the process, within bounds that no real document
reaches, so that a hostile one is an :class:`~voxhelm.errors.InvalidJson` and never a crash.

Every reader of untrusted JSON goes through :func:`decode`: API request bodies (through
``voxhelm.api.validation.json_object``, which the worker protocol views use too), Wyoming
event headers and data, the remote worker's reading of the server's answers, and documents
other processes wrote into the artifact store (chunk checkpoints, the ``transcript.json``
the console reads). Framework-free.

Bounds (docs/configuration.md, "Request bodies"):

- Nesting: at most :data:`MAX_DEPTH` levels of arrays and objects. ``json.loads`` recurses
  once per level, so ``[`` x 30,000 raised ``RecursionError`` (a 500) and a body just under
  the interpreter's recursion limit went on to pydantic and the database. The depth is
  measured *before* decoding, in one pass over the bytes outside strings, at C speed
  (strings are cut out by one regular expression, the brackets left are summed as +1/-1 and
  the running maximum is taken with numpy): a million levels are refused in milliseconds.
  Catching ``RecursionError`` instead would leave the bound at whatever the recursion limit
  and the thread's stack allow, and let nine hundred levels through to every later step.
- Numbers: finite, and integers within 64 bits. ``1e999999`` decodes to ``inf`` and a
  4,000-digit integer to a Python int; no field can hold either (the database cannot).
  ``NaN`` and ``Infinity`` are not JSON at all.
- Strings: valid Unicode without U+0000. A ``\\ud800`` escape decodes to a lone surrogate
  that cannot be encoded as UTF-8, so storing or logging it failed later; PostgreSQL holds
  no NUL in a text or ``jsonb`` column.

Width (long arrays, many keys, long strings) is bounded by the request's size limits and
by each field's own validation, not here: decoding is linear in the size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from voxhelm.errors import InvalidJson

# Real documents nest under 10 levels: the deepest is a claim answer's known-speaker
# reference audio (answer, job, output, diarization, speakers, speaker, references,
# reference, audio: 9).
MAX_DEPTH = 32
MAX_INTEGER = 2**63 - 1

# A JSON string: possessive quantifiers, so an unterminated one costs one linear pass.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
# An escaped NUL, or a surrogate without its partner: a hint only (it may follow an escaped
# backslash), so a match is confirmed on the decoded strings.
_SUSPECT_ESCAPE = re.compile(
    rb"\\u0000"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (UTF-8 JSON text).

    For text that is not JSON the figure may be off, but never below the depth a decoder
    reaches before it finds the error: up to there the text is valid, so its strings are
    the ones cut out here and every closing bracket matches an opening one.
    """
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets.translate(_STEPS), dtype=np.int8)
    return int(np.cumsum(steps, dtype=np.int32).max())


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON value.")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidJson("JSON numbers must be finite.")
    return value


def _bounded_int(text: str) -> int:
    # The length test first: int() of thousands of digits is itself the cost to avoid.
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_INTEGER:
        raise InvalidJson("JSON integers must fit in 64 bits.")
    return value


def _strings(value: Any) -> Iterator[str]:
    """Every key and string in ``value`` (nested at most :data:`MAX_DEPTH` levels)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _holdable(text: str) -> bool:
    """No NUL and no lone surrogate: a database column can hold ``text``."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode(raw: bytes | str, *, subject: str = "Request body") -> Any:
    """The value of the JSON document ``raw`` (UTF-8); raises :class:`InvalidJson`.

    ``subject`` names the document in the error message ("Request body was not valid
    JSON.").
    """
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJson(f"{subject} was not valid JSON.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson(f"{subject} was not valid JSON.") from None
    if nesting_depth(raw) > MAX_DEPTH:
        raise InvalidJson(f"{subject} is nested deeper than {MAX_DEPTH} levels.")
    try:
        value = json.loads(
            text,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            parse_constant=_refuse_constant,
        )
    except InvalidJson as exc:
        raise InvalidJson(f"{subject} was not valid JSON: {exc.message}") from None
    except ValueError:
        raise InvalidJson(f"{subject} was not valid JSON.") from None
    if _SUSPECT_ESCAPE.search(raw) and not all(_holdable(text) for text in _strings(value)):
        raise InvalidJson(
            f"{subject} was not valid JSON: a string holds U+0000 or a lone surrogate."
        )
    return value


def decode_object(
    raw: bytes | str, *, subject: str = "Request body", not_object: str | None = None
) -> dict[str, Any]:
    """:func:`decode` for documents that must be a JSON object."""
    value = decode(raw, subject=subject)
    if not isinstance(value, dict):
        raise InvalidJson(not_object or f"{subject} must be a JSON object.")
    return value

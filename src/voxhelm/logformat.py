r"""Log line formats: plain text, or one JSON object per line (``VOXHELM_LOG_FORMAT=json``).

Structured events (the access log, job outcomes) pass their fields with :func:`log_event`;
the text format appends them as ``key=value``, the JSON format makes them top-level keys.
Fields are chosen by the caller and never include tokens, headers or query strings.

Messages and fields carry text from clients and workers (a request path, a worker's error
detail, a Wyoming model name), so the formatters escape, whatever the call site did, every
character that could end a line or make a reader see another one: C0 and C1 controls,
DEL, the Unicode line and paragraph separators and the bidirectional overrides. The text
format writes them as ``\n``, ``\u001b``, ``\u2028``...; a traceback still follows its line
(only its own line breaks are kept). The JSON format's escaping covers the controls below
U+0020; the others are escaped as ``\uXXXX`` on top.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

FIELDS_ATTR = "voxhelm_fields"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_RESERVED = frozenset({"time", "level", "logger", "message", "exception"})

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE = (
    *range(0x20),
    0x7F,
    *range(0x80, 0xA0),  # C1, NEL (U+0085) among them
    0x061C,  # Arabic letter mark
    0x200E,  # left-to-right and right-to-left marks
    0x200F,
    *range(0x2028, 0x202F),  # line and paragraph separators; bidi embeddings and overrides
    *range(0x2066, 0x206A),  # bidi isolates
)
# JSON's own escapes, so a JSON document logged in a message (stt_debug) stays JSON.
_ESCAPES = {code: _NAMED.get(chr(code)) or f"\\u{code:04x}" for code in _UNSAFE}
_TRACE_ESCAPES = {code: text for code, text in _ESCAPES.items() if code != ord("\n")}
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _UNSAFE if code >= 0x7F}


def escape(text: str) -> str:
    """``text`` on one line: every character that could break or forge a line escaped."""
    return text.translate(_ESCAPES)


def log_event(
    logger: logging.Logger, message: str, fields: Mapping[str, Any], level: int = logging.INFO
) -> None:
    """Log ``message`` with structured ``fields`` (None values are left out)."""
    if logger.isEnabledFor(level):
        clean = {k: v for k, v in fields.items() if v is not None}
        logger.log(level, message, extra={FIELDS_ATTR: clean})


def fields_of(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, FIELDS_ATTR, None)
    return fields if isinstance(fields, Mapping) else {}


def _text_value(value: Any) -> str:
    """A key or value of ``key=value``: bare when that is unambiguous, else a JSON string
    (ASCII-only, so every unsafe character is escaped)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if not text or escape(text) != text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt or TEXT_FORMAT, datefmt)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return super().formatException(ei).translate(_TRACE_ESCAPES)

    def formatStack(self, stack_info: str) -> str:
        return super().formatStack(stack_info).translate(_TRACE_ESCAPES)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = fields_of(record)
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        pairs = " ".join(f"{_text_value(k)}={_text_value(v)}" for k, v in fields.items())
        return f"{head} {pairs}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the event's
    fields, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            entry[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False).translate(_JSON_ESCAPES)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``VOXHELM_LOG_FORMAT``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()

"""Decoding untrusted JSON within bounds: nesting, numbers, surrogates, and the cost."""

from __future__ import annotations

import json
import time

import pytest

from voxhelm.boundedjson import MAX_DEPTH, decode, decode_object, nesting_depth
from voxhelm.errors import InvalidJson


def nested(depth: int) -> bytes:
    return b'[{"a":' * (depth // 2) + b"1" + b"}]" * (depth // 2)


def refusal(raw: bytes | str) -> str:
    with pytest.raises(InvalidJson) as caught:
        decode(raw)
    assert caught.value.code == "invalid_json"
    return caught.value.message


def test_it_decodes_ordinary_documents() -> None:
    document = {"a": [1, -2, 2.5, True, None, "\u00fc \U0001f600 \\ud800 [[{"], "b": {}}
    assert decode(json.dumps(document).encode()) == document
    assert decode(json.dumps(document, ensure_ascii=False)) == document


def test_the_nesting_bound_is_inclusive() -> None:
    assert decode(nested(MAX_DEPTH)) is not None
    assert refusal(nested(MAX_DEPTH + 2)) == (
        f"Request body is nested deeper than {MAX_DEPTH} levels."
    )


@pytest.mark.parametrize(
    "raw",
    [b"[" * 30_000, b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 200_000, nested(1_000_000)],
    ids=["unclosed-arrays", "closed-arrays", "unclosed-objects", "mixed-million"],
)
def test_deep_documents_are_refused_before_decoding(raw: bytes) -> None:
    started = time.monotonic()
    assert "nested deeper" in refusal(raw)
    assert time.monotonic() - started < 2.0  # 0.1-0.3 s for the 6 MB one; shared CI cores


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 1000, "b": '\\"[{' * 100, "c": ["]]]"]})
    assert nesting_depth(text.encode()) == 2
    assert decode(text)["a"] == "[" * 1000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"1e999999", "JSON numbers must be finite."),
        (b'{"a": -1e999999}', "JSON numbers must be finite."),
        (b"[NaN]", "NaN is not a JSON value."),
        (b"-Infinity", "-Infinity is not a JSON value."),
        (b"9" * 4000, "JSON integers must fit in 64 bits."),
        (b"9223372036854775808", "JSON integers must fit in 64 bits."),
        (b'"\\ud800"', "a string holds U+0000 or a lone surrogate."),
        (b'["\\udfff\\ud800"]', "a string holds U+0000 or a lone surrogate."),
        (b'{"\\ud800": 1}', "a string holds U+0000 or a lone surrogate."),
        (b'{"a": ["x\\u0000"]}', "a string holds U+0000 or a lone surrogate."),
    ],
)
def test_values_no_field_can_hold_are_refused(raw: bytes, reason: str) -> None:
    assert refusal(raw) == f"Request body was not valid JSON: {reason}"


def test_the_largest_64_bit_integers_and_paired_surrogates_are_fine() -> None:
    assert decode(b"[9223372036854775807, -9223372036854775807]") == [2**63 - 1, -(2**63 - 1)]
    assert decode(b'"\\ud83d\\ude00"') == "\U0001f600"
    # An escaped backslash before "u0000" or "ud800" is text, not an escape.
    assert decode(b'["\\\\u0000", "\\\\ud800"]') == ["\\u0000", "\\ud800"]


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{", b"", "\ud800", b'"\\x"', b"[1,]"])
def test_malformed_documents_are_invalid_json(raw: bytes | str) -> None:
    assert refusal(raw) == "Request body was not valid JSON."


def test_an_invalid_document_is_also_a_value_error() -> None:
    # Readers of stored documents treat a damaged one as missing with `except ValueError`.
    with pytest.raises(ValueError):
        decode(b"[" * 100)


def test_decode_object_names_its_subject() -> None:
    assert decode_object(b'{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidJson) as caught:
        decode_object(b"[1]", subject="The event header")
    assert caught.value.message == "The event header must be a JSON object."
    with pytest.raises(InvalidJson) as caught:
        decode_object(b"[1]", not_object="Request body must be a JSON object.")
    assert caught.value.message == "Request body must be a JSON object."


def test_a_wide_document_decodes_in_linear_time() -> None:
    raw = json.dumps({"a": list(range(200_000)), "b": ["x" * 100] * 10_000}).encode()
    started = time.monotonic()
    assert len(decode(raw)["a"]) == 200_000
    assert time.monotonic() - started < 2.0

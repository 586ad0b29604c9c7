"""Schema fuzzing: schemathesis generates requests for every operation of ``/v1/openapi.json``
and checks the real server's answers — never a 5xx, and every answer matches the document
(status code, content type, JSON schema).

Bounded for CI: a few valid and a few invalid examples per operation (``FUZZ_EXAMPLES``
each, default 8), with the producer token (the worker token on ``/v1/internal/``, which the
public document leaves out).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from tests.conftest import PRODUCER_TOKEN, WORKER_TOKEN
from tests.hardening.conftest import Figures, Target

pytestmark = [pytest.mark.hardening, pytest.mark.slow]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def fuzz(
    operation: Any,
    label: str,
    token: str,
    url: str,
    examples: dict[str, int],
    statuses: dict[int, int],
    mode: GenerationMode,
) -> Any:
    """A Hypothesis test sending generated cases of ``operation`` to the server at ``url``."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def run(case: Any) -> None:
        examples[label] += 1
        response = case.call_and_validate(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    return run


def generation_modes(operation: Any) -> tuple[GenerationMode, ...]:
    """Valid requests, and invalid ones where a request has something to get wrong: an
    operation without parameters, body or credential (the public liveness answer) has no
    invalid request, and Hypothesis reports generating one as unsatisfiable."""
    raw = operation.definition.raw
    if raw.get("parameters") or raw.get("requestBody") or raw.get("security"):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


def test_every_operation_answers_within_its_documented_contract(
    target: Target, figures: Figures
) -> None:
    # Operations are read from the live document, so they are walked here rather than
    # parametrized at collection time (the server does not exist yet then).
    schema = schemathesis.openapi.from_url(f"{target.url}/v1/openapi.json")
    failures: dict[str, str] = {}
    examples: dict[str, int] = {}
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        token = WORKER_TOKEN if operation.path.startswith("/v1/internal/") else PRODUCER_TOKEN
        examples[label] = 0

        for mode in generation_modes(operation):
            run = fuzz(operation, label, token, target.url, examples, statuses, mode)
            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report all
                failures[f"{label} ({mode.value})"] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    figures.add("fuzz.operations", len(examples))
    figures.add("fuzz.examples", sum(examples.values()))
    figures.add("fuzz.failing_operations", len(failures))
    figures.add("fuzz.statuses", dict(sorted(statuses.items())))
    assert statuses.get(401, 0) < sum(statuses.values()) / 2  # the token was used
    assert failures == {}, "\n\n".join(f"{k}: {v}" for k, v in failures.items())

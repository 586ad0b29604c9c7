"""What a view takes as a request body, and from whom: declared on the view, read by the edge.

A view states its rule once (``api_view`` does it for the API); the body gate
(:mod:`voxhelm.edge.bodies`) resolves a request's path to its view and applies the rule before
a byte of the body is read, so the cap and the credential check cannot drift from the view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Caller = Literal["producer", "worker", "any", "metrics", "operator", "none"]
"""Who may send a body: a producer token, a worker token, either, the metrics token, a
signed-in console operator, or anyone."""

BodyKind = Literal["none", "json", "result", "form", "sign_in", "upload", "staged"]
"""How much body: a few KiB, a JSON document, a remote worker's result (a whole transcript's
text), a console form, the sign-in form, a sync upload (``VOXHELM_MAX_UPLOAD_BYTES``), a
staged upload (``VOXHELM_BATCH_MAX_STAGED_UPLOAD_BYTES``)."""

RULE_ATTR = "voxhelm_body_rule"

V = TypeVar("V", bound=Callable[..., Any])


@dataclass(frozen=True)
class BodyRule:
    """A view's body: who may send one, how large, and what a visitor may send instead."""

    caller: Caller
    body: BodyKind
    visitor_body: BodyKind | None = None
    """The body a caller without the credential may still send (the console's sign-in form on
    ``/``); None refuses such a caller before its body is read."""


NO_BODY = BodyRule("none", "none")
"""Paths with no view (static files, unknown console pages): a few KiB at most, from anyone."""


def declare_body(rule: BodyRule) -> Callable[[V], V]:
    """Attach ``rule`` to a view (the outermost decorator, so the URL resolver sees it)."""

    def mark(view: V) -> V:
        setattr(view, RULE_ATTR, rule)
        return view

    return mark


def rule_of(view: object) -> BodyRule | None:
    rule = getattr(view, RULE_ATTR, None)
    return rule if isinstance(rule, BodyRule) else None

"""Command-line help: plain text from docstrings, and a formatter that keeps their paragraphs.

Docstrings mark names up in reStructuredText for readers of the code (double backticks,
roles such as ``:func:``); ``--help`` is read on a terminal, where that markup is noise.
Every description taken from a docstring goes through :func:`plain`.
"""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap
from collections.abc import Callable
from typing import Any

# :role:`target` and :role:`~module.target` (the tilde shows the last name only).
_ROLE = re.compile(r":[\w.+-]+(?::[\w.+-]+)*:`(~?)([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_INTERPRETED = re.compile(r"`([^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match[2]
    return target.rsplit(".", 1)[-1] if match[1] else target


def plain(docstring: str | None) -> str:
    """``docstring`` as plain text: dedented, without reStructuredText inline markup."""
    text = inspect.cleandoc(docstring or "")
    text = _ROLE.sub(_role, text)
    text = _LITERAL.sub(r"\1", text)
    return _INTERPRETED.sub(r"\1", text)


class ParagraphFormatter(argparse.HelpFormatter):
    """Wraps a description paragraph by paragraph (the default runs them all into one)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            textwrap.fill(
                " ".join(paragraph.split()), width, initial_indent=indent, subsequent_indent=indent
            )
            for paragraph in re.split(r"\n\s*\n", text.strip())
        )


def add_command(
    subparsers: Any,
    name: str,
    handler: Callable[[argparse.Namespace], None],
    help_text: str,
) -> argparse.ArgumentParser:
    """A subcommand run by ``handler``, listed with ``help_text``; its own ``--help`` opens
    with the handler's docstring (or ``help_text`` when it has none)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=plain(handler.__doc__) or help_text,
        formatter_class=ParagraphFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser

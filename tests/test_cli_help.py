"""Every command's ``--help`` is plain text and explains every option; ``--version``; the
options of ``voxhelm check`` as the README shows them."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

from tests.test_cli import clean_env, voxhelm
from voxhelm import __version__
from voxhelm.cli import build_parser as build_voxhelm
from voxhelm.helptext import plain
from voxhelm.remote_worker.cli import build_parser as build_remote_worker
from voxhelm.wyoming_server.__main__ import build_parser as build_wyoming

# reStructuredText inline markup as docstrings use it: ``literal``, :role:`target`, `text`.
MARKUP = re.compile(r"``|:[a-z]+:`|`[^`\s][^`]*`")

ENTRY_POINTS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "voxhelm": build_voxhelm,
    "voxhelm-remote-worker": build_remote_worker,
    "voxhelm-wyoming-stt": build_wyoming,
}


def walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand under it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from walk(sub)


def voxhelm_management_commands() -> Iterator[argparse.ArgumentParser]:
    """The Django management commands Voxhelm's own apps bring (``voxhelm manage NAME``)."""
    for name, app in sorted(get_commands().items()):
        if app.startswith("voxhelm."):
            yield load_command_class(app, name).create_parser("voxhelm manage", name)


def every_parser() -> Iterator[argparse.ArgumentParser]:
    for build in ENTRY_POINTS.values():
        yield from walk(build())
    yield from voxhelm_management_commands()


def unexplained(parser: argparse.ArgumentParser) -> list[str]:
    """The arguments of ``parser`` that ``--help`` lists without a word of help."""
    return [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if action.help is None and not isinstance(action, argparse._SubParsersAction)
    ]


# Django's own options on a management command (--settings, --traceback, ...) come with help.
@pytest.mark.django_db
def test_every_option_of_every_command_has_help() -> None:
    missing = {parser.prog: names for parser in every_parser() if (names := unexplained(parser))}
    assert missing == {}


@pytest.mark.django_db
def test_no_help_shows_docstring_markup() -> None:
    marked = {
        parser.prog: MARKUP.findall(text)
        for parser in every_parser()
        if MARKUP.search(text := parser.format_help())
    }
    assert marked == {}


def test_every_subcommand_says_what_it_does() -> None:
    silent = [
        parser.prog
        for build in ENTRY_POINTS.values()
        for parser in walk(build())
        if not (parser.description or "").strip()
    ]
    assert silent == []


def test_plain_drops_markup_and_keeps_paragraphs() -> None:
    text = plain(
        """The ``voxhelm`` command: see :func:`voxhelm.cli.main`,
        :data:`~voxhelm.encode.FORMATS` and `the README`.

        A second paragraph."""
    )
    assert text == (
        "The voxhelm command: see voxhelm.cli.main,\nFORMATS and the README.\n\nA second paragraph."
    )


@pytest.mark.parametrize("command", sorted(ENTRY_POINTS))
def test_version_prints_the_version(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ENTRY_POINTS[command]().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"{command} {__version__}\n"


@pytest.mark.slow
def test_version_and_help_of_the_real_command(tmp_path: Path) -> None:
    version = voxhelm("--version", cwd=tmp_path, env=clean_env())
    assert (version.returncode, version.stdout) == (0, f"voxhelm {__version__}\n")
    worker = voxhelm("worker", "--help", cwd=tmp_path, env=clean_env())
    assert worker.returncode == 0
    assert "Run batch jobs" in worker.stdout


@pytest.mark.slow
def test_check_runs_the_deployment_checks_as_the_readme_shows(tmp_path: Path) -> None:
    env = clean_env(VOXHELM_BEARER_TOKENS="archive=abc")
    plain_check = voxhelm("check", cwd=tmp_path, env=env)
    assert plain_check.returncode == 0, plain_check.stderr
    assert "security.W" not in plain_check.stdout + plain_check.stderr
    deploy = voxhelm("check", "--deploy", cwd=tmp_path, env=env)
    assert deploy.returncode == 0, deploy.stderr
    assert "security.W008" in deploy.stdout + deploy.stderr  # no HTTPS redirect: a deploy check
    tagged = voxhelm("check", "--deploy", "--tag", "security", cwd=tmp_path, env=env)
    assert tagged.returncode == 0, tagged.stderr
    assert "security.W008" in tagged.stdout + tagged.stderr
    failing = voxhelm("check", "--deploy", "--fail-level", "WARNING", cwd=tmp_path, env=env)
    assert failing.returncode == 1
    assert "security.W008" in failing.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        ("check", "--", "--deploy"),
        ("check", "nosuchapp"),
        ("manage", "check", "--", "--deploy"),
        ("manage", "check", "nosuchapp"),
    ],
)
def test_a_misplaced_option_or_unknown_app_is_a_usage_error(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    result = voxhelm(*argv, cwd=tmp_path, env=clean_env(VOXHELM_BEARER_TOKENS="archive=abc"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    label = argv[-1]
    assert f"No installed app with label '{label}'" in result.stderr
    if label.startswith("-"):
        assert f"options go before '--': voxhelm check {label}" in result.stderr

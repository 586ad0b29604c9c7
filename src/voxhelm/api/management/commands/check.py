"""``check``: Django's system checks, with a usage error instead of a traceback for a label
that names no installed app (``voxhelm check -- --deploy`` gave Django's LookupError)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands import check

USAGE_ERROR = 2  # argparse's exit status for a bad command line


class Command(check.Command):
    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        for action in parser._actions:  # Django gives its app labels no help text
            if action.dest == "args":
                action.help = "check only these apps (default: all); options go before them"

    def handle(self, *app_labels: Any, **options: Any) -> None:  # the stubs say list[str]
        known = sorted(config.label for config in apps.get_app_configs())
        for label in app_labels:
            if label in known:
                continue
            if label.startswith("-"):
                hint = f"options go before '--': voxhelm check {label}"
            else:
                hint = f"the labels are {', '.join(known)}"
            raise CommandError(
                f"No installed app with label {label!r}; {hint}.", returncode=USAGE_ERROR
            )
        super().handle(*app_labels, **options)

"""``manage.py bootstrap_operator``: create or update the operator account (idempotent)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from voxhelm.console.operators import OperatorError, bootstrap_operator


class Command(BaseCommand):
    help = (
        "Create or update the staff account that signs in to the console. The password comes "
        "from --password, VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD(_FILE) or, on a terminal, a prompt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        operator = settings.VOXHELM.operator
        parser.add_argument(
            "--username",
            default=operator.bootstrap_username,
            help="default: $VOXHELM_BOOTSTRAP_OPERATOR_USERNAME",
        )
        parser.add_argument(
            "--email",
            default=operator.bootstrap_email,
            help="default: $VOXHELM_BOOTSTRAP_OPERATOR_EMAIL",
        )
        # The environment (or a _FILE) keeps the password out of the process list.
        parser.add_argument(
            "--password",
            default=None,
            help="visible to other users in the process list: prefer "
            "$VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD(_FILE) or the prompt",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"] or settings.VOXHELM.operator.bootstrap_password
        if not password and options["username"].strip() and sys.stdin.isatty():
            password = self._prompt()
        try:
            result = bootstrap_operator(
                options["username"] or "", password or "", options["email"] or ""
            )
        except OperatorError as exc:
            raise CommandError(str(exc)) from None
        verb = "Created" if result.created else "Updated"
        self.stdout.write(f"{verb} operator account: {result.username}")

    @staticmethod
    def _prompt() -> str:
        first = getpass.getpass("Password: ")
        if first and getpass.getpass("Password (again): ") != first:
            raise CommandError("The passwords do not match.")
        return first

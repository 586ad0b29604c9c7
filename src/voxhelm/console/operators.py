"""Operator accounts: creating or updating the bootstrap operator, and whose jobs are whose."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction

from voxhelm.config import OPERATOR_PRODUCER_PREFIX


class OperatorError(ValueError):
    """The bootstrap request is incomplete (no username or no password)."""


@dataclass(frozen=True)
class Bootstrapped:
    username: str
    created: bool


def producer_for(user: AbstractBaseUser | AnonymousUser) -> str:
    """The producer label that owns an operator's console jobs: ``operator:<username>``.

    Token labels may not start with ``operator:`` (system check ``voxhelm.E002``), so no API
    client can read or create an operator's jobs.
    """
    return f"{OPERATOR_PRODUCER_PREFIX}{user.get_username()}"


def bootstrap_operator(username: str, password: str, email: str = "") -> Bootstrapped:
    """Create the staff account ``username`` or bring an existing one up to date.

    Idempotent: the password is always (re)set, staff and active are forced on, the e-mail
    is set when one is given, and superuser status is never touched.
    """
    username, email = username.strip(), email.strip()
    if not username:
        raise OperatorError("A username is required.")
    if not password.strip():
        raise OperatorError(
            "A password is required. Pass --password or set VOXHELM_BOOTSTRAP_OPERATOR_PASSWORD."
        )
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if email and user.email != email:
            user.email = email
        user.is_staff = True
        user.is_active = True
        user.set_password(password.strip())
        user.save()
    return Bootstrapped(username=username, created=created)

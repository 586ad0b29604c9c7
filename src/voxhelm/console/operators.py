"""Operator accounts: creating or updating the bootstrap operator, and whose jobs are whose."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import aget_user
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http.cookie import parse_cookie

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


class _SessionOnly:
    """The one part of a request that ``aget_user`` reads."""

    def __init__(self, session: SessionBase) -> None:
        self.session = session


async def is_operator_session(cookie_header: str | None) -> bool:
    """Whether a ``Cookie`` header holds the session of a signed-in, active staff user: the
    same test the console views apply, made before a request body is read."""
    if not cookie_header:
        return False
    key = parse_cookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return False
    store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore(key)
    user = await aget_user(_SessionOnly(store))  # type: ignore[arg-type]
    return bool(user.is_authenticated and user.is_staff)

"""Sign-in lockouts that stop password guessing without letting a stranger lock the operator out.

django-axes counts failed sign-ins. A lockout per username alone would be a free denial of
service: five wrong passwords from rotating addresses would lock the operator out at will.
So a client address is locked after ``VOXHELM_LOGIN_MAX_FAILURES`` failures (whatever the
usernames), and so is an address with one username (axes' own parameters); a username is
locked for every address only after ``VOXHELM_LOGIN_ACCOUNT_MAX_FAILURES`` failures within
the cool-off, a number guessing cannot get far with and a prankster needs many addresses
for. A signed-in operator lifts every lockout from the console; ``voxhelm manage
axes_reset`` does the same from a shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest
from django.utils import timezone


def _recent() -> QuerySet[AccessAttempt]:
    recent: QuerySet[AccessAttempt] = AccessAttempt.objects.filter(
        attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME
    )
    return recent


def account_failures(username: str) -> int:
    """Failed sign-ins for ``username`` from every address within the cool-off."""
    total = _recent().filter(username=username).aggregate(n=Sum("failures_since_start"))["n"]
    return int(total or 0)


class LockoutHandler(AxesDatabaseHandler):  # type: ignore[misc]  # axes is untyped
    """axes' database handler, plus the account-wide lock at its own, higher count."""

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        if super().is_locked(request, credentials):
            return True
        username = get_client_username(request, credentials)
        limit = settings.VOXHELM.operator.login_account_max_failures
        return bool(username) and account_failures(username) >= limit


@dataclass(frozen=True)
class Lockouts:
    """Who cannot sign in right now: addresses and usernames (for the console's notice)."""

    addresses: int
    usernames: int

    @property
    def any(self) -> bool:
        return bool(self.addresses or self.usernames)


def current_lockouts() -> Lockouts:
    limit = settings.VOXHELM.operator.login_max_failures
    account_limit = settings.VOXHELM.operator.login_account_max_failures
    recent = _recent()
    by_address = recent.values("ip_address").annotate(n=Sum("failures_since_start"))
    by_username = recent.values("username").annotate(n=Sum("failures_since_start"))
    return Lockouts(
        addresses=sum(1 for row in by_address if row["n"] >= limit),
        usernames=sum(1 for row in by_username if row["username"] and row["n"] >= account_limit),
    )


def lift_lockouts() -> int:
    """Forget every failed sign-in (what ``axes_reset`` does); returns the records removed."""
    removed, _ = AccessAttempt.objects.all().delete()
    return int(removed)

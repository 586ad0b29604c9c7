"""ASGI entry point: ``voxhelm.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voxhelm.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)

from voxhelm.api.limits import BodyLimitMiddleware  # noqa: E402
from voxhelm.console.assets import StaticFiles  # noqa: E402
from voxhelm.console.limits import ConsoleBodyLimit  # noqa: E402

application = StaticFiles(
    ConsoleBodyLimit(
        BodyLimitMiddleware(
            django_application,  # type: ignore[arg-type]  # Django types scope as dict
            lambda: settings.VOXHELM,
        ),
        lambda: settings.VOXHELM,
    )
)

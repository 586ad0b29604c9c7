"""ASGI entry point: ``voxhelm.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voxhelm.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)

from voxhelm.console.assets import StaticFiles, static_prefix  # noqa: E402
from voxhelm.console.errors import gate_page  # noqa: E402
from voxhelm.console.operators import is_operator_session  # noqa: E402
from voxhelm.edge.bodies import (  # noqa: E402
    BodyGate,
    Scope,
    header,
)


async def _operator_signed_in(scope: Scope) -> bool:
    return await is_operator_session(header(scope, b"cookie"))


application = BodyGate(
    StaticFiles(django_application),  # type: ignore[arg-type]  # Django types scope as dict
    lambda: settings.VOXHELM,
    _operator_signed_in,
    static_prefix(),
    gate_page,
)

"""``SecureCookiesMiddleware``: the Secure flag on session and CSRF cookies over HTTPS.

Django's ``SESSION_COOKIE_SECURE`` is one fixed flag. Voxhelm is reached both on plain-HTTP
loopback (a fresh clone) and behind a TLS proxy, so the flag follows the request instead:
``request.is_secure()`` is true for HTTPS, directly or through ``X-Forwarded-Proto: https``
(``SECURE_PROXY_SSL_HEADER``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from voxhelm.api.middleware import ResponseHookMiddleware


def mark_secure(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Set Secure on the session and CSRF cookies of ``response`` when ``request`` is HTTPS."""
    if request.is_secure():
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
            if name in response.cookies:
                response.cookies[name]["secure"] = True
    return response


class SecureCookiesMiddleware(ResponseHookMiddleware):
    def finish(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return mark_secure(request, response)

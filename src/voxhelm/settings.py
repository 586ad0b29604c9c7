"""Django settings, derived from the typed configuration in ``voxhelm.config``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from voxhelm.config import Config, load_config
from voxhelm.secretfile import read_or_create_secret

VOXHELM: Config = load_config()

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = VOXHELM.paths.var_dir


SECRET_KEY = VOXHELM.secret_key or read_or_create_secret(VAR_DIR / "secret-key")
DEBUG = VOXHELM.http.debug
ALLOWED_HOSTS = list(VOXHELM.http.allowed_hosts)
CSRF_TRUSTED_ORIGINS = list(VOXHELM.http.csrf_trusted_origins)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "drf_spectacular_sidecar",  # Swagger UI's static files for /v1/docs
    "voxhelm.api",
    "voxhelm.jobs",
    "voxhelm.artifacts",
    "voxhelm.uploads",
    "voxhelm.workers",
    "voxhelm.studio",
    "voxhelm.search",
    "voxhelm.console",
]

# Batch jobs run as Django Tasks; `voxhelm worker` (or the thread in `voxhelm serve`) runs them.
TASKS = {
    "default": {
        "BACKEND": VOXHELM.execution.tasks_backend,
        "QUEUES": [VOXHELM.execution.task_queue],
    }
}

MIDDLEWARE = [
    "voxhelm.api.access.AccessLogMiddleware",  # outermost: sees every final status
    "voxhelm.api.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before the session and CSRF middleware, so it sees the cookies they set.
    "voxhelm.console.middleware.SecureCookiesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a lockout into the console's sign-in page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "voxhelm.urls"
ASGI_APPLICATION = "voxhelm.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict[str, Any]:
    if VOXHELM.paths.database_url:
        url = urlsplit(VOXHELM.paths.database_url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(url.path.lstrip("/")),
            "USER": unquote(url.username or ""),
            "PASSWORD": unquote(url.password or ""),
            "HOST": url.hostname or "",
            "PORT": str(url.port or ""),
            "CONN_MAX_AGE": 60,
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VOXHELM.paths.database_path),
        "OPTIONS": {
            # WAL lets readers proceed while a writer commits; IMMEDIATE takes the write lock
            # at BEGIN so two writers queue on busy_timeout instead of failing mid-transaction.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # console forms carry the token; no script needs the cookie
# Secure is set per response, on HTTPS requests (directly or X-Forwarded-Proto), by
# voxhelm.console.middleware: a fixed flag would break sign-in on plain-HTTP loopback.
LOGIN_URL = "/"

# The operator console's sign-in: Django sessions, django-axes against password guessing.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = VOXHELM.operator.login_max_failures
AXES_COOLOFF_TIME = timedelta(seconds=VOXHELM.operator.login_lockout_seconds)
# Per address, and per address with a username; the account-wide lock comes later, at its
# own count (voxhelm.console.lockout), so strangers cannot lock the operator out at will.
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["ip_address", "username"]]
AXES_HANDLER = "voxhelm.console.lockout.LockoutHandler"
# A locked-out attempt is refused as locked out (429) and not counted, so it neither extends
# the lockout nor depends on axes' own count (the account-wide lock is the handler's).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "voxhelm.console.views.lockout_response"
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False  # axes would log usernames and addresses at every attempt
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "voxhelm.console.errors.csrf_failure"  # in the console's layout
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Production behind a TLS proxy (VOXHELM_HTTPS_ONLY): plain HTTP is redirected, except the
# health checks a container or load balancer probe makes over plain HTTP, and cookies are
# always Secure.
SECURE_SSL_REDIRECT = VOXHELM.http.https_only
SECURE_REDIRECT_EXEMPT = [r"^v1/health(/live)?$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = VOXHELM.http.https_only
SECURE_HSTS_SECONDS = VOXHELM.http.hsts_seconds
# includeSubDomains and preload bind every other host of the operator's domain to HTTPS: a
# decision for the domain's owner at the proxy, not for one service on one of its names.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]

# Every request body is capped (and a stranger's refused) by voxhelm.edge.bodies before
# Django reads it, per path; Django's own cap on non-file data would refuse a remote worker's
# completion of a long transcript, so it is off. The file threshold decides what stays in
# memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Larger files go to a work folder that a crash does not leave behind (voxhelm.workdirs).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "voxhelm.uploads.spool.SpoolingUploadHandler",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "voxhelm.logformat.TextFormatter"},
        "json": {"()": "voxhelm.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if VOXHELM.http.log_format == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": VOXHELM.http.log_level.upper()},
    "loggers": {
        "django.request": {"level": "ERROR"},
    },
}

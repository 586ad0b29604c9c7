"""Django settings, derived from the typed configuration in ``voxhelm.config``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    "voxhelm.api",
    "voxhelm.jobs",
    "voxhelm.artifacts",
]

# Batch jobs run as Django Tasks; `voxhelm worker` (or the thread in `voxhelm serve`) runs them.
TASKS = {
    "default": {
        "BACKEND": VOXHELM.execution.tasks_backend,
        "QUEUES": [VOXHELM.execution.task_queue],
    }
}

MIDDLEWARE = [
    "voxhelm.api.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
        from urllib.parse import unquote, urlsplit

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
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Bodies of API uploads are limited by voxhelm.api.limits before Django reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": VOXHELM.http.log_level.upper()},
    "loggers": {
        "django.request": {"level": "ERROR"},
    },
}

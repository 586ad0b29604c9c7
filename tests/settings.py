"""Settings for the test session: a clean environment, then the real settings module.

Variables a developer has exported must not change what the tests see, so every VOXHELM_*
variable is dropped first. Tests that need other values build a Config with
``tests.factories.make_config`` and swap it in through the ``voxhelm_config`` fixture.
"""

import os
import tempfile
from pathlib import Path

# VOXHELM_TEST_POSTGRES=1 runs the suite on a throwaway PostgreSQL server instead of SQLite
# (the CI's second pass over the job tests); read before the VOXHELM_* variables are dropped.
_POSTGRES = os.environ.get("VOXHELM_TEST_POSTGRES", "") not in ("", "0")

for _name in list(os.environ):
    if _name.startswith("VOXHELM_") or _name in ("DATABASE_URL", "HF_TOKEN"):
        del os.environ[_name]

os.environ["VOXHELM_VAR_DIR"] = tempfile.mkdtemp(prefix="voxhelm-test-var-")
os.environ["DJANGO_SECRET_KEY"] = "test-only-secret-key"
os.environ["VOXHELM_BEARER_TOKENS"] = "archive=test-token,other=other-token"
os.environ["VOXHELM_WORKER_TOKENS"] = "atlas=worker-token"

from voxhelm.settings import *  # noqa: E402, F403

# A database file rather than SQLite's shared in-memory database: tests that race threads
# against each other then wait on the busy timeout as the service does, instead of failing
# with "database table is locked" (shared-cache memory databases lock whole tables).
DATABASES["default"].setdefault("TEST", {})["NAME"] = str(  # noqa: F405
    Path(os.environ["VOXHELM_VAR_DIR"]) / "test-db.sqlite3"
)

if _POSTGRES:
    import atexit

    from tests.pgserver import start_postgres

    _PG = start_postgres()
    atexit.register(_PG.stop)
    os.environ["VOXHELM_TEST_POSTGRES_URL"] = _PG.url()  # for the postgres_server fixture
    DATABASES["default"] = {  # noqa: F405
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": str(_PG.port),
        "TEST": {"NAME": "test_voxhelm"},
    }

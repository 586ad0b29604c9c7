"""Settings for the test session: a clean environment, then the real settings module.

Variables a developer has exported must not change what the tests see, so every VOXHELM_*
variable is dropped first. Tests that need other values build a Config with
``tests.factories.make_config`` and swap it in through the ``voxhelm_config`` fixture.
"""

import os
import tempfile

for _name in list(os.environ):
    if _name.startswith("VOXHELM_") or _name in ("DATABASE_URL", "HF_TOKEN"):
        del os.environ[_name]

os.environ["VOXHELM_VAR_DIR"] = tempfile.mkdtemp(prefix="voxhelm-test-var-")
os.environ["DJANGO_SECRET_KEY"] = "test-only-secret-key"
os.environ["VOXHELM_BEARER_TOKENS"] = "archive=test-token,other=other-token"
os.environ["VOXHELM_WORKER_TOKENS"] = "atlas=worker-token"

from voxhelm.settings import *  # noqa: E402, F403

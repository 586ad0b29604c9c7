"""The workers app: the server's side of the remote pull-worker protocol (``/v1/internal/...``)."""

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "voxhelm.workers"
    label = "voxhelm_workers"
    verbose_name = "Voxhelm remote workers"

    def ready(self) -> None:
        from voxhelm.workers import topology  # noqa: F401  (registers the W005 check)

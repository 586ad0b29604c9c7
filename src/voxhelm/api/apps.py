"""The OpenAI-compatible HTTP API app."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "voxhelm.api"
    label = "voxhelm_api"
    verbose_name = "Voxhelm API"

    def ready(self) -> None:
        from voxhelm import checks  # noqa: F401  (registers the system checks)

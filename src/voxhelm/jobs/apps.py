"""The jobs app: ``Job``, submission, the pipeline, tasks and the producer API."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "voxhelm.jobs"
    label = "voxhelm_jobs"
    verbose_name = "Voxhelm jobs"

    def ready(self) -> None:
        from voxhelm.jobs import checks  # noqa: F401  (registers the system checks)

"""The uploads app: staged media for batch jobs (``POST /v1/uploads``)."""

from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "voxhelm.uploads"
    label = "voxhelm_uploads"
    verbose_name = "Voxhelm staged uploads"

"""The artifacts app: job artifact rows and the stores their bytes live in."""

from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    name = "voxhelm.artifacts"
    label = "voxhelm_artifacts"
    verbose_name = "Voxhelm artifacts"

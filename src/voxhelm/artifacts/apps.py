"""The artifacts app: job artifact rows (the stores their bytes live in are ``voxhelm.storage``)."""

from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    name = "voxhelm.artifacts"
    label = "voxhelm_artifacts"
    verbose_name = "Voxhelm artifacts"

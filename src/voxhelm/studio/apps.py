"""The studio app: transcript corrections and the producer's speaker library."""

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "voxhelm.studio"
    label = "voxhelm_studio"
    verbose_name = "Voxhelm transcript corrections and speaker library"

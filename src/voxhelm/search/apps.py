"""The search app: the segment index and ``GET /v1/search``."""

from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "voxhelm.search"
    label = "voxhelm_search"
    verbose_name = "Voxhelm transcript search"

    def ready(self) -> None:
        from voxhelm.jobs.signals import transcript_changed
        from voxhelm.search.index import reindex_on_change

        transcript_changed.connect(reindex_on_change, dispatch_uid="voxhelm.search.index")

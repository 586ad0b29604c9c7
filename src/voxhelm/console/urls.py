"""The console's routes, mounted at ``/`` (the API stays under ``/v1/``)."""

from django.urls import path

from voxhelm.console import corrections, model_store, search, uploads, views

app_name = "console"

urlpatterns = [
    path("", views.console, name="console"),
    path("logout", views.sign_out, name="logout"),
    path("jobs", views.job_list, name="jobs"),
    path("uploads", uploads.stage_upload, name="uploads"),
    path("search", search.search_page, name="search"),
    path("lockouts/lift", views.lift_sign_in_lockouts, name="lift-lockouts"),
    path("models", model_store.models_page, name="models"),
    path("models/pulls", model_store.pull_list, name="models-pulls"),
    path("models/pull", model_store.pull_model, name="models-pull"),
    path("models/remove", model_store.remove_model, name="models-remove"),
    path("models/default", model_store.choose_default, name="models-default"),
    path("transcripts/<uuid:job_id>", views.transcript, name="transcript"),
    path("transcripts/<uuid:job_id>/status", views.transcript_status, name="status"),
    path("transcripts/<uuid:job_id>/audio", views.transcript_audio, name="audio"),
    path("transcripts/<uuid:job_id>/cancel", views.cancel_transcript, name="cancel"),
    path("transcripts/<uuid:job_id>/retry", views.retry_transcript, name="retry"),
    path("transcripts/<uuid:job_id>/delete", views.delete_transcript, name="delete"),
    path("transcripts/<uuid:job_id>/speakers", corrections.rename_speaker, name="rename"),
    path("transcripts/<uuid:job_id>/voices", corrections.save_voice, name="save-voice"),
    path(
        "transcripts/<uuid:job_id>/segments/<int:segment_id>",
        corrections.edit_segment,
        name="segment",
    ),
    path("speakers", corrections.library, name="speakers"),
    path("speakers/<uuid:speaker_id>/delete", corrections.delete_voice, name="delete-voice"),
    path(
        "transcripts/<uuid:job_id>/artifacts/<str:fmt>",
        views.transcript_artifact,
        name="artifact",
    ),
]

"""The console's routes, mounted at ``/`` (the API stays under ``/v1/``)."""

from django.urls import path

from voxhelm.console import uploads, views

app_name = "console"

urlpatterns = [
    path("", views.console, name="console"),
    path("logout", views.sign_out, name="logout"),
    path("jobs", views.job_list, name="jobs"),
    path("uploads", uploads.stage_upload, name="uploads"),
    path("lockouts/lift", views.lift_sign_in_lockouts, name="lift-lockouts"),
    path("transcripts/<uuid:job_id>", views.transcript, name="transcript"),
    path("transcripts/<uuid:job_id>/status", views.transcript_status, name="status"),
    path("transcripts/<uuid:job_id>/audio", views.transcript_audio, name="audio"),
    path(
        "transcripts/<uuid:job_id>/artifacts/<str:fmt>",
        views.transcript_artifact,
        name="artifact",
    ),
]

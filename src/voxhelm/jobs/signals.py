"""Signals the jobs app sends, for apps that keep something derived from a job's result."""

from __future__ import annotations

from django.dispatch import Signal

transcript_changed = Signal()
"""A transcription job's transcript is new (the job succeeded, locally or on a remote worker)
or was changed; sent with ``job=`` after the change is committed. The search index listens."""

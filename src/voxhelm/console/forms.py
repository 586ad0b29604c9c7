"""The console's forms: sign-in and a transcription submission, with the reference's messages.

A file over the form's own cap (``VOXHELM_MAX_UPLOAD_BYTES``) is staged first by the page's
script (``POST /uploads``, with a progress bar); the form then names it in ``staged_upload``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.http import HttpRequest

from voxhelm.config import Config
from voxhelm.console.default_model import default_model
from voxhelm.errors import InvalidInput
from voxhelm.formats import ARTIFACT_FORMATS
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.registry import accepted_models
from voxhelm.units import human_bytes
from voxhelm.uploads.models import StagedUpload

INVALID_LOGIN = "Invalid username or password."
INACTIVE = "This operator account is inactive."
NOT_STAFF = "This account is not allowed to access the operator UI."
NO_INPUT = "Provide exactly one input: audio URL, video URL, or uploaded audio file."
TWO_INPUTS = "Submit only one input at a time."
BAD_URL = "Enter a valid absolute HTTP(S) URL."
STAGED_GONE = "The uploaded file is no longer available. Choose it again."
INPUTS = ("audio_url", "video_url", "audio_file", "staged_upload")
FORMAT_LABELS = {
    "text": "Plain text",
    "json": "JSON",
    "vtt": "WebVTT",
    "srt": "SubRip (SRT)",
    "dote": "DOTe",
    "podlove": "Podlove",
}
ALWAYS_FORMATS = ("json",)  # the transcript page reads its segments from transcript.json


class LoginForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        username, password = data.get("username"), data.get("password")
        if not username or not password:
            return data
        # django-axes counts failures and refuses locked-out clients inside authenticate().
        user = authenticate(self.request, username=username, password=password)
        if user is None:
            raise forms.ValidationError(
                INACTIVE if _is_inactive_with(username, password) else INVALID_LOGIN
            )
        if not isinstance(user, User) or not user.is_staff:
            raise forms.ValidationError(NOT_STAFF)
        self.user = user
        return data


def _is_inactive_with(username: str, password: str) -> bool:
    """Whether ``username`` is an inactive account and ``password`` is its password.

    Django's backend refuses inactive users before any message can say so (the reference's
    "inactive" message was unreachable); only the right password reveals the state.
    """
    user = User.objects.filter(username=username).first()
    return user is not None and not user.is_active and user.check_password(password)


def normalize_url(value: str) -> str:
    """A URL as the reference reads it: a missing scheme means https; only http(s) passes."""
    value = value.strip()
    if not value:
        return ""
    if "://" not in value:
        value = f"https://{value}"
    try:
        parts = urlsplit(value)
    except ValueError:
        raise forms.ValidationError(BAD_URL) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise forms.ValidationError(BAD_URL)
    return value


class SubmitForm(forms.Form):
    audio_url = forms.CharField(required=False, max_length=2048, label="Audio URL")
    video_url = forms.CharField(required=False, max_length=2048, label="Video URL")
    audio_file = forms.FileField(required=False, label="Audio file")
    staged_upload = forms.UUIDField(required=False, widget=forms.HiddenInput)
    language = forms.CharField(required=False, max_length=32, label="Language")
    model = forms.ChoiceField(label="Model")
    formats = forms.MultipleChoiceField(
        label="Output formats",
        widget=forms.CheckboxSelectMultiple,
        choices=[(key, FORMAT_LABELS.get(key, key)) for key in ARTIFACT_FORMATS],
        required=False,
    )
    diarization = forms.BooleanField(required=False, label="Label speakers")

    def __init__(self, config: Config, *args: Any, producer: str = "", **kwargs: Any) -> None:
        initial = {"model": default_model(config), "formats": list(ARTIFACT_FORMATS)}
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.config = config
        self.producer = producer
        self.staged: StagedUpload | None = None
        self.fields["model"].choices = [(name, name) for name in accepted_models(config.stt)]  # type: ignore[attr-defined]
        if config.diarization.backend == "none":
            del self.fields["diarization"]
        # The page's script stages a file over the form's cap (see the module docstring).
        self.form_cap = config.limits.max_upload_bytes
        self.staged_cap = config.limits.batch_max_staged_upload_bytes
        self.staged_cap_text = human_bytes(self.staged_cap)
        self.fields["audio_file"].help_text = (
            f"Up to {human_bytes(self.form_cap)}; with JavaScript on, up to "
            f"{self.staged_cap_text} (a larger file uploads first, with a progress bar, and "
            "runs as a batch job)."
        )

    def clean_audio_url(self) -> str:
        return normalize_url(self.cleaned_data.get("audio_url") or "")

    def clean_video_url(self) -> str:
        return normalize_url(self.cleaned_data.get("video_url") or "")

    def clean_audio_file(self) -> Any:
        upload = self.cleaned_data.get("audio_file")
        limit = self.config.limits.max_upload_bytes
        if upload is not None and upload.size is not None and upload.size > limit:
            raise forms.ValidationError(
                f"Uploaded file exceeded {human_bytes(limit)} transcription limit."
            )
        return upload

    def clean_staged_upload(self) -> Any:
        """A file the page's script staged: this operator's, not yet used by a job."""
        upload_id = self.cleaned_data.get("staged_upload")
        if upload_id is None:
            return None
        self.staged = (
            StagedUpload.objects.for_producer(self.producer)
            .filter(pk=upload_id, claimed_by_job__isnull=True, deleting_at__isnull=True)
            .first()
        )
        if self.staged is None:
            raise forms.ValidationError(STAGED_GONE)
        return upload_id

    def clean_language(self) -> str:
        try:
            return normalize_language(self.cleaned_data.get("language") or None) or ""
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_formats(self) -> list[str]:
        chosen = set(self.cleaned_data.get("formats") or ()) | set(ALWAYS_FORMATS)
        return [key for key in ARTIFACT_FORMATS if key in chosen]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = [name for name in INPUTS if data.get(name)]
        if not given and not self.errors.keys() & set(INPUTS):
            raise forms.ValidationError(NO_INPUT)
        if len(given) > 1:
            raise forms.ValidationError(TWO_INPUTS)
        return data

    @property
    def staged_size(self) -> str:
        return human_bytes(self.staged.size_bytes) if self.staged is not None else ""

    @property
    def input_kind(self) -> str:
        """``audio_url``, ``video_url`` or ``upload`` (a file, sent or staged; valid forms only)."""
        if self.cleaned_data.get("audio_url"):
            return "audio_url"
        if self.cleaned_data.get("video_url"):
            return "video_url"
        return "upload"

"""Batch ``job_type=synthesize``: text in, speech artifacts out.

The submission is validated with the same checks as ``POST /v1/audio/speech`` (text length,
voice, speed, model) so a bad job is a 400 at once, never a failed job later. Synthesis
runs where transcription runs (``VOXHELM_TRANSCRIPTION_EXECUTION_MODE``, unless
``VOXHELM_SYNTHESIS_EXECUTION_MODE`` says otherwise): on the local workers, or, in
``remote_pull`` mode, on the remote workers (the reference kept it local, so a server
with only ``voxhelm web`` never ran it). The steps are ``voxhelm.batch.synthesize``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from voxhelm import tts
from voxhelm.api.validation import exact
from voxhelm.batch.request import SynthesisRequest
from voxhelm.batch.synthesize import SPEECH_FORMATS, synthesize_speech
from voxhelm.config import Config
from voxhelm.jobs.models import Job
from voxhelm.jobs.schemas import JobCommon, OptionalText, parse_output

DEFAULT_SPEECH_FORMATS = ("wav",)
UNSUPPORTED_SPEECH_FORMAT = (
    "Unsupported output format. Use wav, mp3, ogg, opus, flac, or aac for synthesis."
)


class TextInput(BaseModel):
    kind: Literal["text"] = "text"
    text: str = Field(description="What to say; at most VOXHELM_TTS_MAX_INPUT_CHARS characters.")


class SpeechOutput(BaseModel):
    formats: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SPEECH_FORMATS),
        description="Any of wav (default), mp3, ogg, opus, flac, aac.",
    )


class SynthesisSubmission(JobCommon):
    """``POST /v1/jobs`` with ``job_type=synthesize``. Unknown fields are ignored."""

    job_type: Literal["synthesize"]
    model: str = Field(default="auto", description="auto, piper, tts-1, tts-1-hd, ...")
    voice: OptionalText = Field(default=None, description="A Piper voice or an OpenAI voice name.")
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    input: TextInput
    output: SpeechOutput = Field(default_factory=SpeechOutput)

    @field_validator("model")
    @classmethod
    def _speech_model(cls, value: str) -> str:
        return tts.validate_model(value)

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, value: object) -> object:
        return tts.validate_speed(value)

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise exact("input must be an object.")
        if value.get("kind") != "text":
            raise exact("Batch synthesis currently supports only input.kind=text.")
        text = value.get("text")
        if not isinstance(text, str) or not text.strip():
            raise exact("Batch synthesis requires input.text.")
        return {"kind": "text", "text": text.strip()}

    @field_validator("output", mode="before")
    @classmethod
    def _output(cls, value: object) -> object:
        return parse_output(
            value,
            allowed=frozenset(SPEECH_FORMATS),
            normalize=lambda key: key.strip().lower(),
            default=DEFAULT_SPEECH_FORMATS,
            unsupported=UNSUPPORTED_SPEECH_FORMAT,
        )

    def to_request(self, config: Config) -> SynthesisRequest:
        """The typed request, with the checks that need the settings (400s): the text's
        length, and the voice resolved to the one the job will use."""
        tts.validate_text(self.input.text, config.limits.tts_max_input_chars, param="input.text")
        voice = tts.catalog(config.tts).resolve(self.voice, self.language).name
        formats = tuple(self.output.formats)
        return SynthesisRequest(self.input.text, voice, self.speed, formats)


def synthesize_text(attempt: Any) -> tuple[str, dict[str, Any]]:
    """The steps of a synthesis job run here (an ``pipeline.Attempt`` is the sink)."""
    job: Job = attempt.job
    text, worker = synthesize_speech(
        job.synthesis_request, job.language or None, attempt, attempt.config
    )
    return text, {"backend": "piper", "requested_model": job.model, **worker}

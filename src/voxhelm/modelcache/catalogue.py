"""Known models and how a name a user types maps to a Hub repository and files.

Three kinds: faster-whisper (CTranslate2) Whisper models, by short name (``small``) or by any
Hugging Face repository id of a CTranslate2 Whisper conversion; Piper voices, by the voice
name of the public Piper voice catalogue (``de_DE-thorsten-medium``); and whisper.cpp ggml
files (``ggml-small.bin``). Sizes are the download sizes of the Hub's files, rounded: they
let ``voxhelm models list`` and ``/v1/models?all=true`` say what a pull will cost without
asking the network.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from voxhelm.errors import InvalidInput

MB = 1_000_000


class Kind(enum.StrEnum):
    FASTERWHISPER = "fasterwhisper"
    PIPER = "piper"
    GGML = "ggml"


# The engine each kind serves with: /v1/models and the registry speak in backends.
ENGINES = {Kind.FASTERWHISPER: "fasterwhisper", Kind.GGML: "whispercpp", Kind.PIPER: "piper"}

PIPER_REPO = "rhasspy/piper-voices"
PIPER_REVISION = "v1.0.0"  # the catalogue's release tag; voices.json at its root lists voices
PIPER_INDEX = "voices.json"
GGML_REPO = "ggerganov/whisper.cpp"
# What faster-whisper itself downloads from a model repository (faster_whisper.utils).
FASTERWHISPER_PATTERNS = (
    "config.json",
    "preprocessor_config.json",
    "model.bin",
    "tokenizer.json",
    "vocabulary.*",
)
FASTERWHISPER_REQUIRED = ("config.json", "model.bin")

_PIPER_NAME = re.compile(r"^[a-z]{2,3}_[A-Z]{2}-[A-Za-z0-9_]+-(x_low|low|medium|high)$")
_GGML_NAME = re.compile(r"^ggml-[A-Za-z0-9._-]+\.bin$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


@dataclass(frozen=True)
class Known:
    """A model Voxhelm can pull: where it lives on the Hub and what it is."""

    name: str  # what users type and what requests name
    kind: Kind
    repo: str
    size_bytes: int | None  # about what the pull downloads; None when unknown offline
    english_only: bool = False
    revision: str = "main"
    file: str | None = None  # the one file of a ggml model

    @property
    def engine(self) -> str:
        return ENGINES[self.kind]

    @property
    def multilingual(self) -> bool:
        return not self.english_only


def _fw(name: str, repo: str, megabytes: int) -> Known:
    english = name.endswith(".en")
    return Known(name, Kind.FASTERWHISPER, repo, megabytes * MB, english_only=english)


def _ggml(size: str, megabytes: int) -> Known:
    name = f"ggml-{size}.bin"
    return Known(
        name, Kind.GGML, GGML_REPO, megabytes * MB, english_only=size.endswith(".en"), file=name
    )


FASTERWHISPER_MODELS: tuple[Known, ...] = (
    _fw("tiny.en", "Systran/faster-whisper-tiny.en", 76),
    _fw("tiny", "Systran/faster-whisper-tiny", 76),
    _fw("base.en", "Systran/faster-whisper-base.en", 146),
    _fw("base", "Systran/faster-whisper-base", 146),
    _fw("small.en", "Systran/faster-whisper-small.en", 486),
    _fw("small", "Systran/faster-whisper-small", 486),
    _fw("medium.en", "Systran/faster-whisper-medium.en", 1530),
    _fw("medium", "Systran/faster-whisper-medium", 1530),
    _fw("large-v2", "Systran/faster-whisper-large-v2", 3090),
    _fw("large-v3", "Systran/faster-whisper-large-v3", 3090),
    _fw("large-v3-turbo", "mobiuslabsgmbh/faster-whisper-large-v3-turbo", 1620),
    _fw("distil-small.en", "Systran/faster-distil-whisper-small.en", 336),
    _fw("distil-medium.en", "Systran/faster-distil-whisper-medium.en", 789),
    _fw("distil-large-v3", "Systran/faster-distil-whisper-large-v3", 1510),
)
GGML_MODELS: tuple[Known, ...] = (
    _ggml("tiny.en", 78),
    _ggml("tiny", 78),
    _ggml("base.en", 148),
    _ggml("base", 148),
    _ggml("small.en", 488),
    _ggml("small", 488),
    _ggml("medium", 1530),
    _ggml("large-v3", 3100),
    _ggml("large-v3-turbo", 1620),
)
KNOWN: dict[str, Known] = {m.name: m for m in (*FASTERWHISPER_MODELS, *GGML_MODELS)}


def resolve(name: str) -> Known:
    """The model ``name`` stands for; raises InvalidInput (``param=model``) when it is none.

    A repository id (``owner/repo``) is taken as a CTranslate2 Whisper model: whether it is
    one is only known once its file list is read (:mod:`voxhelm.modelstore.pull`).
    """
    name = name.strip()
    known = KNOWN.get(name)
    if known is not None:
        return known
    if _GGML_NAME.match(name):
        return Known(name, Kind.GGML, GGML_REPO, None, english_only=".en." in name, file=name)
    if _PIPER_NAME.match(name):
        return Known(name, Kind.PIPER, PIPER_REPO, None, revision=PIPER_REVISION)
    if _REPO_ID.match(name) and ".." not in name:
        return Known(name, Kind.FASTERWHISPER, name, None)
    raise InvalidInput(
        f"Unknown model '{name[:100]}'. Use a faster-whisper name ({', '.join(short_names())}), "
        "a Hugging Face repository id of a CTranslate2 Whisper model, a Piper voice name "
        "such as en_US-lessac-medium, or a whisper.cpp file such as ggml-small.bin.",
        param="model",
        code="unknown_model",
    )


def short_names() -> list[str]:
    return [m.name for m in FASTERWHISPER_MODELS]


def pull_command(name: str) -> str:
    """The command that installs ``name`` (error messages and the console name it)."""
    return f"voxhelm models pull {name}"

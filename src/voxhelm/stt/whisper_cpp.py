"""whisper.cpp engine: runs the ``whisper-cli`` (or older ``main``) program on a WAV file.

Voxhelm decodes the media itself (PyAV) and hands whisper.cpp a 16 kHz mono PCM WAV in a
private temporary directory, so no ffmpeg is involved. whisper.cpp builds differ in the
flags they know (``--suppress-nst`` is new, ``-mc`` was renamed), so each binary is asked
for its ``--help`` once and only flags it lists are passed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from voxhelm.audio import Audio, write_wav
from voxhelm.config import WhisperCppConfig
from voxhelm.modelcache.layout import mark_file_used
from voxhelm.stt.base import (
    Backend,
    BackendUnavailable,
    TranscriptionFailed,
    TranscriptionRequest,
)
from voxhelm.transcript import Segment, Transcript, Word
from voxhelm.workdirs import Workdir

logger = logging.getLogger("voxhelm.stt")

MAX_THREADS = 4
# whisper.cpp has no progress to watch, so a hung or runaway process is killed after this;
# generous, because old CPU builds run several times slower than realtime.
MIN_TIMEOUT_SECONDS = 120.0
TIMEOUT_PER_AUDIO_SECOND = 10.0
HELP_TIMEOUT_SECONDS = 15.0
PROMPT_CONTEXT_TOKENS = 224  # Whisper's most: half its 448-token text context
LOGGED_OUTPUT_CHARS = 4000
REQUIRED_FLAGS = ("-m", "-f", "-of")

_FLAG = re.compile(r"(?<![\w/.-])(--?[A-Za-z][\w-]*)")
_TIMESTAMP = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)[,.](\d{3})$")
_SPECIAL_TOKEN = re.compile(r"^(\[_[^\]]*\]|<\|[^|]*\|>)$")


def public_model_name(configured: str) -> str:
    """The model name shown to clients: a bare file name as is, a path's last part."""
    if "/" in configured or configured.startswith(("~", ".")):
        return Path(configured).expanduser().name or configured
    return configured


@functools.lru_cache(maxsize=16)
def supported_flags(binary: str) -> frozenset[str]:
    """The command-line flags ``binary`` lists in its ``--help`` (asked once per path).

    Raises BackendUnavailable when the program cannot be run or does not look like
    whisper.cpp. A failure is not cached, so a binary installed later is picked up.
    """
    try:
        result = subprocess.run(  # noqa: S603 - the operator's configured binary, no shell
            [binary, "--help"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=HELP_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(f"whisper.cpp binary '{binary}' could not be run: {exc}") from exc
    # Both whisper-cli and main print their usage to stderr.
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    flags = frozenset(_FLAG.findall(text))
    if not all(flag in flags for flag in REQUIRED_FLAGS):
        raise BackendUnavailable(f"'{binary}' does not look like a whisper.cpp command line.")
    return flags


def _first(flags: frozenset[str], *names: str) -> str | None:
    return next((name for name in names if name in flags), None)


def parse_timestamp(value: object) -> float:
    """``HH:MM:SS,mmm`` (or with ``.``) as seconds; a missing value is 0. Raises ValueError."""
    if value is None:
        return 0.0
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"Invalid whisper.cpp timestamp {value!r}.")
    hours, minutes, seconds, millis = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _is_milliseconds(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _span(item: Mapping[str, Any]) -> tuple[float, float]:
    """Start and end in seconds: ``offsets`` (integer ms) when present, else ``timestamps``."""
    offsets = item.get("offsets")
    if isinstance(offsets, Mapping):
        start, end = offsets.get("from"), offsets.get("to")
        if _is_milliseconds(start) and _is_milliseconds(end):
            return start / 1000, end / 1000
    timestamps = item.get("timestamps")
    if not isinstance(timestamps, Mapping):
        timestamps = {}
    return parse_timestamp(timestamps.get("from")), parse_timestamp(timestamps.get("to"))


def _text(value: object) -> str:
    """A JSON string read with surrogateescape, as proper text (bad UTF-8 becomes U+FFFD)."""
    if not isinstance(value, str):
        return ""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _words(tokens: object) -> tuple[Word, ...]:
    """Words from the per-token timings of ``--output-json-full``.

    A token starting with a space starts a word; special tokens (``[_BEG_]``, ``[_TT_42]``)
    are skipped. Token texts are joined as raw bytes first because whisper.cpp splits
    multi-byte characters across tokens.
    """
    if not isinstance(tokens, list):
        return ()
    groups: list[list[tuple[str, float, float, float | None]]] = []
    for token in tokens:
        if not isinstance(token, Mapping) or not isinstance(token.get("text"), str):
            continue
        text = token["text"]
        if not text or _SPECIAL_TOKEN.match(text):
            continue
        start, end = _span(token)
        p = token.get("p")
        probability = float(p) if isinstance(p, int | float) and not isinstance(p, bool) else None
        if not groups or text.startswith(" "):
            groups.append([])
        groups[-1].append((text, start, end, probability))
    words = []
    for group in groups:
        probabilities = [p for *_, p in group if p is not None]
        words.append(
            Word(
                start=group[0][1],
                end=max(group[-1][2], group[0][1]),
                word=_text("".join(text for text, *_ in group)),
                probability=sum(probabilities) / len(probabilities) if probabilities else None,
            )
        )
    return tuple(word for word in words if word.word.strip())


def parse_output(payload: object, *, words: bool = False) -> tuple[list[Segment], str | None]:
    """Segments and language from whisper.cpp's JSON output.

    Entries that are not objects or whose text is blank are skipped; ids are consecutive.
    Raises ValueError for a payload without a ``transcription`` list or a bad timestamp.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("transcription"), list):
        raise ValueError("whisper.cpp output has no transcription list.")
    segments: list[Segment] = []
    for item in payload["transcription"]:
        if not isinstance(item, Mapping):
            continue
        text = _text(item.get("text")).strip()
        if not text:
            continue
        start, end = _span(item)
        segments.append(
            Segment(
                id=len(segments),
                start=start,
                end=end,
                text=text,
                words=_words(item.get("tokens")) if words else (),
            )
        )
    result = payload.get("result")
    language = result.get("language") if isinstance(result, Mapping) else None
    return segments, (language if isinstance(language, str) and language else None)


class WhisperCppBackend(Backend):
    name = "whispercpp"
    supports_word_timestamps = True  # from --output-json-full; a build without it gives none
    supports_translation = True

    def __init__(self, config: WhisperCppConfig, cache_dir: Path) -> None:
        super().__init__(public_model_name(config.model))
        self.config = config
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._reported: set[str] = set()

    # -- locating the binary and the model ------------------------------------------------
    def binary(self) -> Path:
        """The whisper.cpp program; raises BackendUnavailable when it is not there."""
        configured = self.config.bin
        if "/" in configured:
            path = Path(configured).expanduser()
            if not path.is_file():
                raise BackendUnavailable(
                    f"whisper.cpp binary was not found at '{configured}'. "
                    "Set VOXHELM_WHISPERCPP_BIN to the whisper-cli program."
                )
            return path
        found = shutil.which(configured)
        if found is None:
            raise BackendUnavailable(
                f"whisper.cpp binary '{configured}' was not found in PATH. Install whisper.cpp "
                "or set VOXHELM_WHISPERCPP_BIN to the path of whisper-cli."
            )
        return Path(found)

    def model_path(self) -> Path:
        """The ggml model file; a bare file name lives in ``VOXHELM_MODEL_CACHE_DIR``."""
        configured = self.config.model
        path = Path(configured).expanduser()
        # Path("./x.bin") drops the "./", so look at the string for a directory part.
        if path.is_absolute() or "/" in configured or os.sep in configured:
            return path
        return self.cache_dir / path

    def _existing_model(self) -> Path:
        path = self.model_path()
        if not path.is_file():
            raise BackendUnavailable(
                f"whisper.cpp model '{path}' is missing. Install it with `voxhelm models pull "
                f"{path.name}`, or convert one (`voxhelm models export-ggml` writes "
                "ggml-tiny.en.bin into VOXHELM_MODEL_CACHE_DIR)."
            )
        return path

    def check(self) -> list[str]:
        problems = []
        for locate in (self.binary, self._existing_model):
            try:
                locate()
            except BackendUnavailable as exc:
                problems.append(str(exc))
        return problems

    # -- the command line ------------------------------------------------------------------
    def command(
        self,
        binary: Path,
        model: Path,
        wav: Path,
        output_base: Path,
        request: TranscriptionRequest,
    ) -> list[str]:
        """The argv for one run, with only the flags this binary lists in its help."""
        flags = supported_flags(str(binary))
        output_json = _first(flags, "-oj", "--output-json")
        if output_json is None:
            raise BackendUnavailable(f"'{binary}' cannot write JSON output (-oj).")
        argv = [str(binary), "-m", str(model), "-f", str(wav), output_json, "-of", str(output_base)]

        def add(names: Sequence[str], *values: str, setting: str = "") -> None:
            flag = _first(flags, *names)
            if flag is not None:
                argv.extend((flag, *values))
            elif setting:
                self._report_once(f"{names[0]} is not supported by {binary}; {setting} is ignored.")

        if request.word_timestamps:
            add(("-ojf", "--output-json-full"))
        add(("-t", "--threads"), str(min(MAX_THREADS, os.cpu_count() or 1)))
        add(("-p", "--processors"), str(self.config.processors))
        add(("-l", "--language"), request.language or "auto")
        add(("-np", "--no-prints"))
        max_context = self.config.max_context
        if request.prompt and max_context == 0:
            # The prompt is text context: with none allowed, whisper.cpp drops it silently.
            max_context = PROMPT_CONTEXT_TOKENS
        add(("--max-context", "-mc"), str(max_context))
        if self.config.suppress_nst:
            add(("--suppress-nst", "-sns"), setting="VOXHELM_WHISPERCPP_SUPPRESS_NST")
        if request.task == "translate":
            if _first(flags, "-tr", "--translate") is None:
                raise TranscriptionFailed("This whisper.cpp build cannot translate.")
            add(("-tr", "--translate"))
        if request.temperature is not None:
            add(("-tp", "--temperature"), str(request.temperature), setting="temperature")
        if request.prompt:
            add(("--prompt",), request.prompt, setting="prompt")
        return argv

    def _report_once(self, message: str) -> None:
        with self._lock:
            if message in self._reported:
                return
            self._reported.add(message)
        logger.info("whisper.cpp: %s", message)

    # -- inference ---------------------------------------------------------------------------
    def transcribe(self, audio: Audio, request: TranscriptionRequest) -> Transcript:
        binary = self.binary()
        model = self._existing_model()
        if model.parent == self.cache_dir:
            mark_file_used(model)  # the console's "last use"
        with Workdir("whispercpp") as work:
            wav = write_wav(audio, work / "input.wav")
            argv = self.command(binary, model, wav, work / "transcript", request)
            self._run(
                argv, timeout=max(MIN_TIMEOUT_SECONDS, TIMEOUT_PER_AUDIO_SECOND * audio.duration)
            )
            output = work / "transcript.json"
            if not output.is_file():
                raise TranscriptionFailed("whisper.cpp transcription failed: no JSON was written.")
            raw = output.read_bytes()
        try:
            # whisper.cpp writes token texts as raw bytes, which may split a UTF-8 character;
            # surrogateescape keeps those bytes so they can be joined back up later.
            payload = json.loads(raw.decode("utf-8", "surrogateescape"), strict=False)
            segments, language = parse_output(payload, words=request.word_timestamps)
        except ValueError as exc:
            raise TranscriptionFailed(f"whisper.cpp output could not be read: {exc}") from exc
        return Transcript.from_segments(
            segments,
            language=language,
            duration=audio.duration,
            backend=self.name,
            model=self.model,
            task=request.task,
        )

    def _run(self, argv: list[str], timeout: float) -> None:
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            error_id = secrets.token_hex(6)
            logger.warning(
                "whisper.cpp killed after %.0fs (error id %s): %s",
                timeout,
                error_id,
                _tail(exc.stderr),
            )
            raise TranscriptionFailed(
                f"whisper.cpp took too long and was stopped (error id {error_id})."
            ) from None
        except OSError as exc:
            raise BackendUnavailable(f"whisper.cpp could not be started: {exc}") from exc
        if result.returncode != 0:
            error_id = secrets.token_hex(6)
            logger.warning(
                "whisper.cpp exited with status %s (error id %s): %s",
                result.returncode,
                error_id,
                _tail(result.stderr) or _tail(result.stdout) or "(no output)",
            )
            raise TranscriptionFailed(f"whisper.cpp transcription failed (error id {error_id}).")


def _tail(output: bytes | str | None) -> str:
    """The end of a process's output for the log (the end holds the error)."""
    if not output:
        return ""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    return text.strip()[-LOGGED_OUTPUT_CHARS:]

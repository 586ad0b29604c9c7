"""Synthetic conversations with known turns: the bundled Piper voice and espeak-ng voices.

Each voice is a distinct synthetic speaker; lines are spoken one after another with a pause,
and the ground-truth turns are the stretches where each line's synthesized audio is not
silent. Used by the diarization tests and by ``bench/diarization.py``.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.speech import synthesize
from voxhelm import audio
from voxhelm.diarization.base import Turn

# name -> espeak-ng (voice+variant, pitch 0-99, words per minute); "piper" is Piper's voice.
ESPEAK_VOICES = {
    "ava": ("en-us+f3", 80, 165),
    "bert": ("en-gb-x-rp+m3", 25, 150),
    "cleo": ("en-gb-scotland+f4", 60, 145),
}
SILENCE_LEVEL = 0.01  # below this a sample counts as silence when trimming a line


@dataclass(frozen=True)
class Line:
    speaker: str
    text: str
    pause: float | None = None  # silence after the line; None: the conversation's pause


@dataclass(frozen=True)
class Conversation:
    """16 kHz mono speech with the ground truth: who says what, when."""

    samples: np.ndarray  # float32
    turns: tuple[Turn, ...]
    lines: tuple[Line, ...]

    @property
    def duration(self) -> float:
        return len(self.samples) / audio.SAMPLE_RATE

    def audio(self) -> audio.Audio:
        return audio.Audio(self.samples)

    def wav_bytes(self) -> bytes:
        return audio.wav_bytes(self.audio())

    def speaker_at(self, start: float, end: float) -> str:
        """Who spoke most within ``[start, end)``."""
        overlaps: dict[str, float] = {}
        for turn in self.turns:
            overlap = min(end, turn.end) - max(start, turn.start)
            if overlap > 0:
                overlaps[turn.speaker] = overlaps.get(turn.speaker, 0.0) + overlap
        return max(overlaps, key=lambda name: overlaps[name])


def has_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.cache
def speak(speaker: str, text: str) -> np.ndarray:
    """``text`` in ``speaker``'s voice, 16 kHz mono float32, silence trimmed at both ends."""
    if speaker == "piper":
        wav = synthesize(text).wav_bytes()
    else:
        voice, pitch, speed = ESPEAK_VOICES[speaker]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "line.wav"
            subprocess.run(
                [
                    "espeak-ng",
                    "-v",
                    voice,
                    "-p",
                    str(pitch),
                    "-s",
                    str(speed),
                    "-w",
                    str(path),
                    text,
                ],
                check=True,
                capture_output=True,
            )
            wav = path.read_bytes()
    samples = audio.decode(wav).samples
    loud = np.flatnonzero(np.abs(samples) > SILENCE_LEVEL)
    return samples[loud[0] : loud[-1] + 1].astype(np.float32)


def converse(
    lines: list[Line], pause_seconds: float = 0.6, lead_seconds: float = 0.3
) -> Conversation:
    """The lines spoken in order with ``pause_seconds`` of silence between them."""
    rate = audio.SAMPLE_RATE
    parts = [np.zeros(int(lead_seconds * rate), dtype=np.float32)]
    turns = []
    position = len(parts[0])
    for line in lines:
        speech = speak(line.speaker, line.text)
        turns.append(Turn(position / rate, (position + len(speech)) / rate, line.speaker))
        pause = pause_seconds if line.pause is None else line.pause
        gap = np.zeros(int(pause * rate), dtype=np.float32)
        parts += [speech, gap]
        position += len(speech) + len(gap)
    return Conversation(np.concatenate(parts), tuple(turns), tuple(lines))


TWO_SPEAKERS = [
    Line("piper", "Welcome back to the show. Today we talk about gardening on a balcony."),
    Line("ava", "Thanks for having me. I grow tomatoes and beans in small pots."),
    Line("piper", "How much sun do the plants need every day?"),
    Line("ava", "At least six hours of sunlight, and water in the morning."),
    Line("piper", "That sounds easy enough for beginners to try at home."),
    Line("ava", "It is. Start with herbs like basil and mint, they forgive mistakes."),
]

THREE_SPEAKERS = [
    Line("piper", "Good evening and welcome to our panel about city transport."),
    Line("ava", "Thank you. Buses in our town now run every ten minutes."),
    Line("bert", "But the trains on the coast line are still late most mornings."),
    Line("piper", "What would help commuters the most this year?"),
    Line("bert", "More bicycle parking at the stations, and safer cycle lanes."),
    Line("ava", "I agree, and cheaper monthly tickets for students and families."),
    Line("piper", "Thank you both for joining us tonight."),
]

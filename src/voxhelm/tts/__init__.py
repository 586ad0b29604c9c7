"""Text-to-speech (framework-free): Piper voices, voice choice, sentence-by-sentence synthesis.

The API every surface uses (HTTP, Wyoming, batch jobs)::

    from voxhelm import tts
    from voxhelm.encode import encode

    speech = tts.synthesize(text, config=config, voice="alloy", speed=1.0, language="en")
    wav = encode(speech.audio.samples, speech.audio.sample_rate, "wav")

    for chunk in tts.stream(text, config=config, admission=capacity.VOICE):  # a sentence each
        ...

Both run the engine in the calling thread and hold a lane slot per sentence. Errors are
:mod:`voxhelm.errors` types with client-safe messages: InvalidInput (``param`` ``input``,
``voice`` or ``speed``), Busy, ServiceUnavailable.
"""

from voxhelm.tts.base import SpeechChunk, SynthesisOptions, TtsEngine, Voice, VoiceUnavailable
from voxhelm.tts.registry import SPEECH_MODELS, catalog, engine, validate_model
from voxhelm.tts.synthesis import (
    MAX_SPEED,
    MIN_SPEED,
    Speech,
    SpeechStream,
    nothing_to_speak,
    stream,
    synthesize,
    validate_speed,
    validate_text,
)
from voxhelm.tts.voices import OPENAI_VOICES, VoiceCatalog

__all__ = [
    "MAX_SPEED",
    "MIN_SPEED",
    "OPENAI_VOICES",
    "SPEECH_MODELS",
    "Speech",
    "SpeechChunk",
    "SpeechStream",
    "SynthesisOptions",
    "TtsEngine",
    "Voice",
    "VoiceCatalog",
    "VoiceUnavailable",
    "catalog",
    "engine",
    "nothing_to_speak",
    "stream",
    "synthesize",
    "validate_model",
    "validate_speed",
    "validate_text",
]

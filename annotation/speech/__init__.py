"""Spoken labels (docs/voice.md): recognisers restricted to the label words, WAV capture.

Three :class:`SpeechRecognizer` implementations, chosen by ``VoiceSettings.backend``:

``default``
    :class:`PocketSphinxRecognizer` — offline English, nothing to download: the
    ``pocketsphinx`` wheel ships its own US-English acoustic model and
    dictionary. Recognition uses a JSGF grammar of the label words and their
    synonyms *plus* a fixed set of decoy words drawn from the dictionary and the most
    frequent English words (:func:`common_words`), away from the label words'
    pronunciations; an answer that matches one of them better than any label word, or
    not clearly worse (the lead :data:`MARGIN` in the n-best list, :func:`nbest_lead`,
    and over a rival decode of the grammar without the label's class), is rejected
    ("not understood"), never turned into a guessed label.
    The grammar's own dictionary adds pronunciations of the label words for accents
    beyond General American (:data:`ACCENT_VARIANTS`: non-rhotic "anger", "fear",
    "scared"; British short a; ...). Steady room noise is taken out by spectral
    subtraction (:func:`spectral_denoise`); each utterance is decoded in one pass with
    the cepstral mean taken over the whole answer (``cmn=batch``), with a white-noise
    floor 20 dB under the answer's level added first. benchmarks/bench_voice.py
    measures acceptance per accent and noise level.
``vosk``
    :class:`VoskRecognizer` — a user-supplied Vosk model folder, decoding with
    the label words plus ``[unk]`` as grammar; words with a confidence under
    ``min_confidence`` are rejected.
``keys``
    :class:`KeyboardRecognizer` — digit keys 0–7 map to the classes in code order.

Audio: :class:`AnswerRecorder` holds one input stream of the microphone (sounddevice)
for a whole session; :class:`UtteranceDetector` cuts it into answers; answers are kept
as 16-bit mono WAV files. In a session both run in a child process
(:mod:`gazelab.annotation.voice_worker`), so a crash of native audio or recogniser code
costs the voice, never the session.

The package holds one concept per module: :mod:`.base` (the label words, results, the
recogniser interface), :mod:`.wav` (WAV files, resampling), :mod:`.sphinx` (the
PocketSphinx recogniser), :mod:`.recognizers` (keys, Vosk, choosing a recogniser from the
settings) and :mod:`.microphone` (capture and end-pointing). Import from here:
``from gazelab.annotation.speech import AnswerRecorder``.
"""

from __future__ import annotations

from gazelab.annotation.speech.base import (
    NOT_SPOKEN,
    SAMPLE_RATE,
    SPOKEN_WORDS,
    LabelResult,
    SpeechError,
    SpeechRecognizer,
    label_of_words,
)
from gazelab.annotation.speech.microphone import AnswerRecorder, UtteranceDetector
from gazelab.annotation.speech.recognizers import (
    BEST_WHISPER_MODELS,
    VOSK_REQUIRED,
    KeyboardRecognizer,
    VoskRecognizer,
    default_backend,
    default_recognizer,
    recognizer_from_settings,
    vosk_missing_files,
)
from gazelab.annotation.speech.sphinx import (
    ACCENT_VARIANTS,
    DECOY_MIN_DISTANCE,
    DECOY_SEED,
    MARGIN,
    N_COMMON,
    N_DECOYS,
    VOWELS,
    PocketSphinxRecognizer,
    _model_dir,
    common_words,
    decoy_words,
    grammar_dictionary,
    nbest_lead,
    neighbour_words,
    phone_distance,
    phone_neighbours,
    spectral_denoise,
)
from gazelab.annotation.speech.wav import _WavMixin, read_wav, to_16k, write_wav

__all__ = [
    "ACCENT_VARIANTS",
    "AnswerRecorder",
    "BEST_WHISPER_MODELS",
    "DECOY_MIN_DISTANCE",
    "DECOY_SEED",
    "KeyboardRecognizer",
    "LabelResult",
    "MARGIN",
    "N_COMMON",
    "NOT_SPOKEN",
    "N_DECOYS",
    "PocketSphinxRecognizer",
    "SAMPLE_RATE",
    "SPOKEN_WORDS",
    "SpeechError",
    "SpeechRecognizer",
    "UtteranceDetector",
    "VOSK_REQUIRED",
    "VOWELS",
    "VoskRecognizer",
    "common_words",
    "decoy_words",
    "default_backend",
    "default_recognizer",
    "grammar_dictionary",
    "label_of_words",
    "nbest_lead",
    "neighbour_words",
    "phone_distance",
    "phone_neighbours",
    "read_wav",
    "recognizer_from_settings",
    "spectral_denoise",
    "to_16k",
    "vosk_missing_files",
    "write_wav",
    "_WavMixin",
    "_model_dir",
]

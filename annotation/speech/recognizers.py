"""The other recognisers (digit keys; Vosk with a user model) and choosing one from the
voice settings (``default``: the best measured recogniser that is installed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.annotation.speech.base import (
    SAMPLE_RATE,
    SPOKEN_WORDS,
    LabelResult,
    SpeechError,
    SpeechRecognizer,
)
from gazelab.annotation.speech.sphinx import PocketSphinxRecognizer
from gazelab.annotation.speech.wav import _WavMixin, to_16k
from gazelab.settings import VoiceSettings


# -- keyboard ---------------------------------------------------------------------------------
class KeyboardRecognizer(_WavMixin):
    """Digit keys 0–7 → the classes in code order; no audio."""

    name = "keys"
    model = ""

    @staticmethod
    def label_for_key(key: str) -> str | None:
        if len(key) == 1 and key.isdigit() and int(key) < len(CLASSES):
            return CLASSES[int(key)]
        return None

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        return LabelResult(None, "", 0.0)  # keys only: audio is never interpreted


# -- vosk (user model) ------------------------------------------------------------------------
VOSK_REQUIRED = ("am/final.mdl", "conf/mfcc.conf", "graph/HCLr.fst|graph/HCLG.fst",
                 "graph/Gr.fst|graph/HCLG.fst", "graph/phones/word_boundary.int")  # fmt: skip
"""Files a Vosk model folder needs for grammar decoding ("a|b": either)."""


def vosk_missing_files(model_dir: str | Path) -> list[str]:
    """The :data:`VOSK_REQUIRED` files absent from ``model_dir`` (Kaldi's layout)."""
    root = Path(model_dir)
    return [alt for alt in VOSK_REQUIRED if not any((root / a).is_file() for a in alt.split("|"))]


class VoskRecognizer(_WavMixin):
    """Vosk with a user-supplied model folder; grammar = label words + ``[unk]``."""

    name = "vosk"

    def __init__(self, model_dir: str | Path, *, min_confidence: float = 0.5) -> None:
        model_dir = Path(model_dir)
        if not (model_dir / "am").is_dir() and not (model_dir / "conf").is_dir():
            raise SpeechError(
                f"{model_dir} is not a Vosk model folder (no am/ or conf/ inside);"
                " download one from https://alphacephei.com/vosk/models and unpack it"
            )
        missing = vosk_missing_files(model_dir)
        if missing:
            raise SpeechError(
                f"{model_dir} is an incomplete Vosk model folder: missing {', '.join(missing)};"
                " unpack the whole model from https://alphacephei.com/vosk/models again"
            )
        import vosk

        vosk.SetLogLevel(-1)
        try:
            self._model = vosk.Model(str(model_dir))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise SpeechError(
                f"{model_dir}: Vosk could not load this model folder ({exc}); its files are"
                " damaged or of another Vosk version — unpack the model again"
            ) from exc
        self.model = str(model_dir)
        self.min_confidence = min_confidence
        self.grammar = json.dumps([*SPOKEN_WORDS, "[unk]"])

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        import vosk

        rec = vosk.KaldiRecognizer(self._model, SAMPLE_RATE, self.grammar)
        rec.SetWords(True)
        rec.AcceptWaveform(to_16k(audio, rate).tobytes())
        return self.parse_result(json.loads(rec.FinalResult()), self.min_confidence)

    @staticmethod
    def parse_result(result: dict[str, Any], min_confidence: float) -> LabelResult:
        """Vosk's JSON result → label; ``[unk]`` or low-confidence words are rejected."""
        words = [
            (w.get("word", ""), float(w.get("conf", 0.0)))
            for w in result.get("result", [])
            if w.get("word") in SPOKEN_WORDS
        ]
        text = str(result.get("text", ""))
        if not words:
            return LabelResult(None, text, 0.0)
        word, conf = words[-1]
        if conf < min_confidence:
            return LabelResult(None, text, conf)
        return LabelResult(SPOKEN_WORDS[word], text, conf)


def default_recognizer() -> SpeechRecognizer:
    """The out-of-the-box offline recogniser (nothing to download)."""
    return PocketSphinxRecognizer()


BEST_WHISPER_MODELS = ("tiny.en", "base")
"""Whisper models in the order benchmarks/bench_voice.py ranks them for spoken labels
(docs/voice.md): ``default`` uses the first one installed."""


def default_backend(root: Path | None = None) -> tuple[str, str]:
    """``(backend, model)`` that ``voice.backend = 'default'`` uses: the best measured
    recogniser that is installed — Whisper when faster-whisper and a model installed with
    ``gazelab voice install`` are present, else PocketSphinx (nothing to download)."""
    from gazelab.annotation.speech_whisper import installed_models, whisper_available

    if whisper_available():
        have = installed_models(root)
        for name in BEST_WHISPER_MODELS:
            if name in have:
                return "whisper", name
    return "pocketsphinx", "en-us (bundled with the pocketsphinx package)"


def recognizer_from_settings(voice: VoiceSettings) -> SpeechRecognizer:
    backend = voice.backend
    model = voice.whisper_model
    if backend == "default":
        backend, found = default_backend()
        model = found if backend == "whisper" else model
    if backend == "vosk":
        if not voice.vosk_model:
            raise SpeechError("voice.backend = 'vosk' needs voice.vosk_model (a model folder)")
        return VoskRecognizer(voice.vosk_model, min_confidence=voice.min_confidence)
    if backend == "whisper":
        from gazelab.annotation.speech_whisper import VETO_MARGIN, WhisperRecognizer

        margin = None if voice.whisper_veto == "strict" else VETO_MARGIN  # None: the hard veto
        return WhisperRecognizer(model, veto_margin=margin)
    if backend == "pocketsphinx":
        return PocketSphinxRecognizer()
    return KeyboardRecognizer()

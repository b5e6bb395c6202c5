"""Spoken labels (SPEC §2): recognisers restricted to the label words, WAV capture.

Three :class:`SpeechRecognizer` implementations, chosen by ``VoiceSettings.backend``:

``default``
    :class:`PocketSphinxRecognizer` — offline English, nothing to download: the
    ``pocketsphinx`` wheel ships its own US-English acoustic model and
    dictionary. Recognition uses a JSGF grammar of the label words and their
    synonyms *plus* a fixed set of decoy words drawn from the dictionary, away from
    the label words' pronunciations; an answer that matches a decoy better than any
    label word is rejected ("not understood"), never turned into a guessed label.
    The grammar's own dictionary adds pronunciations of the label words for accents
    beyond General American (:data:`ACCENT_VARIANTS`: non-rhotic "anger", "fear",
    "scared"; British short a; ...). Steady room noise is taken out by spectral
    subtraction (:func:`spectral_denoise`); each utterance is decoded twice so the
    cepstral-mean normalisation has adapted to the speaker and the room before the
    pass that counts, with a white-noise floor 20 dB under the answer's level added
    first. benchmarks/bench_voice.py measures acceptance per accent and noise level.
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
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import wave
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.errors import GazelabError
from gazelab.models.datasets.base import SYNONYMS
from gazelab.settings import VoiceSettings

SAMPLE_RATE = 16000

NOT_SPOKEN = frozenset({"neutrality", "none", "mad", "joy"})
"""Label synonyms that name dataset folders but are not accepted as spoken answers."""

SPOKEN_WORDS: dict[str, str] = {w: c for w, c in SYNONYMS.items() if w not in NOT_SPOKEN}
"""Words a participant may say, and the class each means (SPEC §2)."""


class SpeechError(GazelabError, RuntimeError):
    """The recogniser cannot run (missing model folder, unreadable WAV, no microphone)."""


@dataclass(frozen=True)
class LabelResult:
    """What was understood: ``label`` is one of the 8 classes, or ``None`` (not understood)."""

    label: str | None
    text: str
    confidence: float

    @property
    def understood(self) -> bool:
        return self.label is not None


def label_of_words(text: str) -> str | None:
    """The class named in ``text`` (last label word wins, as people correct themselves)."""
    found = [SPOKEN_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in SPOKEN_WORDS]
    return found[-1] if found else None


class SpeechRecognizer(Protocol):
    name: str

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult: ...
    def recognize_wav(self, path: str | Path) -> LabelResult: ...


def read_wav(path: str | Path) -> tuple[NDArray[np.int16], int]:
    """A 16-bit WAV as mono int16 samples and its rate."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise SpeechError(f"{path}: {8 * w.getsampwidth()}-bit audio; 16-bit PCM needed")
            rate, channels = w.getframerate(), w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    except (OSError, wave.Error, EOFError) as exc:
        raise SpeechError(f"cannot read WAV file {path}: {exc}") from exc
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def write_wav(path: str | Path, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> Path:
    """Write mono 16-bit PCM atomically (a crash never leaves half a file under ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from gazelab.fileio import atomic_open

    with atomic_open(path) as f, wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(np.asarray(audio, dtype=np.int16).tobytes())
    return path


def to_16k(audio: NDArray[Any], rate: int) -> NDArray[np.int16]:
    """Resample to 16 kHz mono int16 (polyphase, anti-aliased)."""
    x = np.asarray(audio)
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(SAMPLE_RATE, int(rate))
        x = resample_poly(x.astype(np.float64), SAMPLE_RATE // g, int(rate) // g)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


class _WavMixin:
    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        raise NotImplementedError

    def recognize_wav(self, path: str | Path) -> LabelResult:
        audio, rate = read_wav(path)
        return self.recognize(audio, rate)


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


# -- pocketsphinx (out of the box) ------------------------------------------------------------
N_DECOYS = 400
DECOY_SEED = 0
DECOY_MIN_DISTANCE = 0.5


def _model_dir() -> Path:
    try:
        from pocketsphinx import get_model_path
    except ImportError as exc:  # pragma: no cover - pinned in requirements.lock
        raise SpeechError(
            "the default recogniser needs the 'pocketsphinx' package (run `make install`)"
        ) from exc
    return Path(get_model_path()) / "en-us"


VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())


def phone_distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Edit distance between two phone strings over the longer one's length (0 same, 1
    nothing shared); a vowel for another vowel costs 0.5, as accents swap vowels."""
    prev = [float(j) for j in range(len(b) + 1)]
    for i, pa in enumerate(a, 1):
        cur = [float(i)]
        for j, pb in enumerate(b, 1):
            sub = 0.0 if pa == pb else 0.5 if (pa in VOWELS and pb in VOWELS) else 1.0
            cur.append(min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + sub))
        prev = cur
    return prev[-1] / max(len(a), len(b), 1)


@cache
def decoy_words(
    n: int = N_DECOYS, seed: int = DECOY_SEED, min_distance: float = DECOY_MIN_DISTANCE
) -> tuple[str, ...]:
    """A fixed sample of dictionary words that compete with the labels (rejection).

    Words whose pronunciation lies within ``min_distance`` (:func:`phone_distance`) of a
    label word's, accent variants included, are left out: they would take real answers
    from the labels (a repeat where none was needed) rather than catch other words."""
    entries: dict[str, list[tuple[str, ...]]] = {}
    labels: list[tuple[str, ...]] = []
    with open(_model_dir() / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            head, _, phones = line.strip().partition(" ")
            word = re.sub(r"\(\d+\)$", "", head)
            if word in SPOKEN_WORDS:
                labels.append(tuple(phones.split()))
            if not re.fullmatch(r"[a-z]{3,}", word):
                continue
            if any(word.startswith(s[:5]) for s in SPOKEN_WORDS):
                continue  # no forms of the label words themselves
            entries.setdefault(word, []).append(tuple(phones.split()))
    labels += [tuple(p.split()) for ps in ACCENT_VARIANTS.values() for p in ps]
    words = list(entries)  # dictionary order
    rng = np.random.default_rng(seed)
    if min_distance <= 0:  # the plain sample (the default before issue 21.7)
        return tuple(sorted(rng.choice(words, n, replace=False).tolist()))
    chosen: list[str] = []
    for k in rng.permutation(len(words)):
        prons = entries[words[k]]  # every pronunciation goes into the grammar's dictionary
        if all(phone_distance(p, lab) >= min_distance for p in prons for lab in labels):
            chosen.append(words[k])
            if len(chosen) == n:
                break
    return tuple(sorted(chosen))


ACCENT_VARIANTS: dict[str, tuple[str, ...]] = {
    # Non-rhotic (British, Caribbean, New York) endings: -er, -ear, -ared lose the R.
    # British short a (/a/, between US AE and AA), yod in "neutral", lax final -y,
    # northern English /ʊ/ in "disgust", h-dropping; New York raised /æ/ ("sad" as
    # S EH AH D, "angry" as EY NG G R IY); all in the model's ARPAbet phones.
    "neutral": ("N Y UW T R AH L", "N Y UW T R AE L", "N Y OW T R AH L"),
    "anger": ("AE NG G AH", "AA NG G AH", "AA NG G ER", "AE NG G AA", "EH NG G ER", "EY NG G ER"),
    "angry": (
        "AA NG G R IY",
        "AE NG G R IH",
        "AA NG G R IH",
        "AA NG G R EY",
        "EH NG G R IY",
        "EY NG G R IY",
    ),
    "contemptuous": ("K AH N T EH M P CH OW AH S",),
    "disgust": ("D IH S G UH S T", "D IH Z G AH S T"),
    "disgusted": ("D IH S G UH S T IH D", "D IH S G AH S T EH D"),
    "fear": ("F IH AH", "F IY AH", "F IY R"),
    "scared": ("S K EH AH D", "S K EH D", "S K ER D", "S K AE D"),
    "fearful": ("F IH AH F AH L", "F IY AH F AH L", "F IH F AH L"),
    "happy": (
        "HH AA P IY",
        "HH AE P IH",
        "HH AA P IH",
        "HH AA P EY",
        "AA P IY",
        "AE P IY",
        "HH EH P IY",
    ),
    "happiness": (
        "HH AA P IH N AH S",
        "HH AE P IH N AH S",
        "HH AA P IY N EH S",
        "AA P IH N AH S",
        "HH EH P IY N AH S",
        "HH EH P IH N AH S",
    ),
    "sadness": (
        "S AA D N AH S",
        "S AA D N EH S",
        "S AE D N EH S",
        "S EH AH D N AH S",
        "S EH D N AH S",
    ),
    "sad": ("S AA D", "S EH AH D", "S EH D"),
    "surprise": ("S AH P R OY Z",),
    "surprised": ("S AH P R OY Z D",),
}
"""Pronunciations the US-English dictionary lacks, for accents beyond General American
(issue 21.7; measured with espeak-ng's British, Scottish, Lancashire, West Midlands,
Caribbean and New York voices in benchmarks/bench_voice.py)."""


def grammar_dictionary(
    words: Sequence[str], decoys: Sequence[str], *, accent_variants: bool = True
) -> str:
    """The recogniser's pronunciation dictionary: every pronunciation the US-English
    dictionary gives the label ``words`` and ``decoys``, plus :data:`ACCENT_VARIANTS` of
    the label words (CMU format: ``word``, ``word(2)``, ... then the phones)."""
    wanted = set(words) | set(decoys)
    prons: dict[str, list[str]] = {w: [] for w in (*words, *decoys)}
    with open(_model_dir() / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            head, _, phones = line.strip().partition(" ")
            word = re.sub(r"\(\d+\)$", "", head)
            if word in wanted:
                prons[word].append(phones.strip())
    if accent_variants:
        for word in words:
            for phones in ACCENT_VARIANTS.get(word, ()):
                if phones not in prons[word]:
                    prons[word].append(phones)
    missing = [w for w, p in prons.items() if not p]
    if missing:
        raise SpeechError(f"no pronunciation for {', '.join(missing)} in the dictionary")
    return "".join(
        f"{w if i == 0 else f'{w}({i + 1})'} {p}\n"
        for w, ps in prons.items()
        for i, p in enumerate(ps)
    )


def spectral_denoise(
    x: NDArray[np.floating[Any]],
    *,
    rate: int = SAMPLE_RATE,
    frame_ms: float = 32.0,
    percentile: float = 20.0,
    over_subtraction: float = 3.0,
    floor: float = 0.05,
) -> NDArray[np.float64]:
    """Steady room noise taken out of an answer by spectral subtraction.

    The noise power spectrum is estimated from the ``percentile``-th percentile of each
    frequency bin's power over the frames (the quiet frames between and around words;
    no separate noise recording needed), scaled to the mean of exponentially distributed
    noise power; each bin's magnitude is scaled by
    ``sqrt(max(1 - over_subtraction * noise / power, floor**2))``. On clean speech the
    estimate is near zero and the answer passes almost unchanged. ``x``: samples at
    ``rate`` Hz; returns float64 samples, same length. Noise that fills fricatives
    otherwise makes the decoder hear "f" and "s" (10 dB white noise: 6 % of the label
    words became "fear"/"fearful" without it, 0-1 % with it; benchmarks/bench_voice.py).
    """
    from scipy.signal import istft, stft

    x = np.asarray(x, dtype=np.float64)
    n = int(rate * frame_ms / 1000)
    if x.size < 4 * n:
        return x
    _, _, spec = stft(x, fs=rate, nperseg=n, noverlap=3 * n // 4)
    power = np.abs(spec) ** 2
    # A noise-only bin's power is exponentially distributed: its p-th percentile is
    # -ln(1 - p) times its mean.
    noise = np.percentile(power, percentile, axis=1, keepdims=True) / -np.log1p(-percentile / 100)
    gain = np.sqrt(np.maximum(1.0 - over_subtraction * noise / np.maximum(power, 1e-12), floor**2))
    _, y = istft(spec * gain, fs=rate, nperseg=n, noverlap=3 * n // 4)
    return np.asarray(y[: x.size], dtype=np.float64)


class PocketSphinxRecognizer(_WavMixin):
    """Offline English keyword-grammar recogniser with decoy-word rejection."""

    name = "pocketsphinx"
    model = "en-us (bundled with the pocketsphinx package)"

    def __init__(
        self,
        *,
        words: Sequence[str] = tuple(SPOKEN_WORDS),
        n_decoys: int = N_DECOYS,
        decoy_min_distance: float = DECOY_MIN_DISTANCE,
        noise_floor_db: float | None = 20.0,
        passes: int = 2,
        accent_variants: bool = True,
        denoise: bool = True,
        decoder_options: dict[str, Any] | None = None,
    ) -> None:
        from pocketsphinx import Decoder

        model = _model_dir()
        self.words = tuple(words)
        self.decoys = decoy_words(n_decoys, min_distance=decoy_min_distance) if n_decoys else ()
        self.noise_floor_db = noise_floor_db
        self.passes = passes
        self.denoise = denoise
        grammar = (
            "#JSGF V1.0;\ngrammar labels;\npublic <answer> = "
            + " | ".join((*self.words, *self.decoys))
            + " ;\n"
        )
        dictionary = grammar_dictionary(self.words, self.decoys, accent_variants=accent_variants)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "labels.dict").write_text(dictionary, encoding="utf-8")
            self._decoder = Decoder(
                hmm=str(model / "en-us"), dict=str(Path(tmp) / "labels.dict"), lm=None,
                logfn=os.devnull, **(decoder_options or {}),
            )  # fmt: skip
        self._decoder.add_jsgf_string("labels", grammar)
        self._decoder.activate_search("labels")
        self._lock = threading.Lock()

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        x = to_16k(audio, rate).astype(np.float64)
        hyp = self._decode(spectral_denoise(x) if self.denoise else x)
        text = re.sub(r"\(\d+\)", "", hyp.hypstr).strip() if hyp is not None else ""
        label = label_of_words(text)
        confidence = float(hyp.prob) if (hyp is not None and label) else 0.0
        return LabelResult(label, text, confidence)

    def _decode(self, x: NDArray[np.float64]) -> Any:
        """The grammar's best hypothesis for ``x`` (16 kHz float samples), or ``None``."""
        rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
        pad = np.zeros(int(0.3 * SAMPLE_RATE))
        x = np.concatenate([pad, x, pad])
        if self.noise_floor_db is not None and rms > 0:
            # A white-noise floor ``noise_floor_db`` under the answer's RMS: digital silence
            # and very clean synthetic speech upset the decoder's energy/cepstral
            # normalisation (measured: 88 % → 100 % on espeak-ng words, tests/test_speech.py).
            sd = rms / 10 ** (self.noise_floor_db / 20)
            x += np.random.default_rng(x.size).normal(0.0, sd, x.size)
        raw = np.clip(np.rint(x), -32768, 32767).astype(np.int16).tobytes()
        with self._lock:
            hyp = None
            for _ in range(self.passes):
                self._decoder.start_utt()
                self._decoder.process_raw(raw, full_utt=True)
                self._decoder.end_utt()
                hyp = self._decoder.hyp()
        return hyp


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
        from gazelab.annotation.speech_whisper import WhisperRecognizer

        return WhisperRecognizer(model)
    if backend == "pocketsphinx":
        return PocketSphinxRecognizer()
    return KeyboardRecognizer()


# -- microphone -------------------------------------------------------------------------------
class AnswerRecorder:
    """The default microphone (sounddevice), 16 kHz mono int16: one input stream for as long
    as it is open.

    ``start()`` opens the stream (once: on an open stream it only drops what was recorded
    so far, so a session that listens to many answers holds one capture stream, not one per
    answer); ``read()`` returns what arrived since the last read; ``stop()`` closes the
    stream and returns what was not read. At most ``max_s`` seconds of unread audio are
    kept (the oldest is dropped), so memory stays bounded when nobody reads.
    """

    def __init__(
        self, rate: int = SAMPLE_RATE, device: int | str | None = None, *, max_s: float = 30.0
    ) -> None:
        self.rate = rate
        self.device = device
        self.max_samples = int(max_s * rate)
        self._chunks: deque[NDArray[np.int16]] = deque()
        self._n = 0  # samples held in _chunks
        self._lock = threading.Lock()
        self._stream: Any = None
        self.overflows = 0  # callbacks that reported lost input (the reader fell behind)

    def start(self) -> None:
        """Open the stream, or, when it is open, drop what was recorded so far."""
        if self._stream is not None:
            self.drain()
            return
        try:
            import sounddevice as sd
        except OSError as exc:
            raise SpeechError(f"no audio system ({exc}); use --voice keys") from exc
        self.drain()

        def callback(indata: NDArray[np.int16], frames: int, time_: Any, status: Any) -> None:
            chunk = indata[:, 0].copy()
            with self._lock:
                if status:
                    self.overflows += 1
                self._chunks.append(chunk)
                self._n += chunk.size
                while self._n > self.max_samples and len(self._chunks) > 1:
                    self._n -= self._chunks.popleft().size

        try:
            self._stream = sd.InputStream(
                samplerate=self.rate,
                channels=1,
                dtype="int16",
                device=self.device,
                callback=callback,
            )
            self._stream.start()
        except Exception as exc:  # PortAudioError has no stable import path
            self._close_stream()
            raise SpeechError(f"cannot open the microphone: {exc}; use --voice keys") from exc

    @property
    def active(self) -> bool:
        return self._stream is not None

    def drain(self) -> None:
        """Drop the audio recorded so far."""
        with self._lock:
            self._chunks.clear()
            self._n = 0

    def read(self) -> NDArray[np.int16]:
        """Audio recorded since the last ``read`` (for streaming end-pointing).

        Raises :class:`SpeechError` when the stream has stopped by itself (the device went
        away or the audio server died)."""
        with self._lock:
            new = list(self._chunks)
            self._chunks.clear()
            self._n = 0
        stream = self._stream
        if stream is not None and not new and not stream.active:
            self._close_stream()
            raise SpeechError(
                "the microphone stopped delivering audio (device or audio server gone)"
            )
        return np.concatenate(new) if new else np.zeros(0, dtype=np.int16)

    def stop(self) -> NDArray[np.int16]:
        """Close the stream; returns the audio that was not read."""
        self._close_stream()
        with self._lock:
            rest = list(self._chunks)
            self._chunks.clear()
            self._n = 0
        return np.concatenate(rest) if rest else np.zeros(0, dtype=np.int16)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()


class UtteranceDetector:
    """Energy-based end-pointing: cuts a microphone stream into answers.

    Frames of ``frame_ms`` count as speech when their level is above both
    ``min_dbfs`` and the running noise floor plus ``margin_db``; an answer
    ends after ``end_silence_ms`` of non-speech, and must hold at least
    ``min_speech_ms`` of speech. ``pre_roll_ms`` of audio before the onset is
    kept so word onsets are not clipped.
    """

    def __init__(
        self,
        rate: int = SAMPLE_RATE,
        *,
        frame_ms: float = 20.0,
        min_dbfs: float = -45.0,
        margin_db: float = 12.0,
        min_speech_ms: float = 120.0,
        end_silence_ms: float = 400.0,
        pre_roll_ms: float = 200.0,
        max_ms: float = 6000.0,
    ) -> None:
        self.rate = rate
        self.frame = max(1, int(rate * frame_ms / 1000))
        self.min_dbfs = min_dbfs
        self.margin_db = margin_db
        self.min_speech = int(min_speech_ms / frame_ms)
        self.end_silence = int(end_silence_ms / frame_ms)
        self.pre_roll = int(pre_roll_ms / frame_ms)
        self.max_frames = int(max_ms / frame_ms)
        self.noise_db = -60.0
        self._buf = np.zeros(0, dtype=np.int16)
        self._history: list[NDArray[np.int16]] = []
        self._current: list[NDArray[np.int16]] | None = None
        self._speech = 0
        self._silence = 0

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.int16)
        self._history, self._current = [], None
        self._speech = self._silence = 0

    @staticmethod
    def dbfs(frame: NDArray[np.int16]) -> float:
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) if frame.size else 0.0
        return 20.0 * np.log10(max(rms, 1e-3) / 32768.0)

    def feed(self, chunk: NDArray[np.int16]) -> list[NDArray[np.int16]]:
        """Add audio; returns every answer that ended inside it."""
        self._buf = np.concatenate([self._buf, np.asarray(chunk, dtype=np.int16).ravel()])
        done: list[NDArray[np.int16]] = []
        while self._buf.size >= self.frame:
            frame, self._buf = self._buf[: self.frame], self._buf[self.frame :]
            level = self.dbfs(frame)
            speech = level > max(self.min_dbfs, self.noise_db + self.margin_db)
            if not speech:  # track the floor slowly up, quickly down
                self.noise_db += (0.05 if level > self.noise_db else 0.5) * (level - self.noise_db)
            if self._current is None:
                self._history = [*self._history[-self.pre_roll :], frame]
                if speech:
                    self._current, self._speech, self._silence = list(self._history), 1, 0
                continue
            self._current.append(frame)
            if speech:
                self._speech += 1
                self._silence = 0
            else:
                self._silence += 1
            if self._silence >= self.end_silence or len(self._current) >= self.max_frames:
                if self._speech >= self.min_speech:
                    done.append(np.concatenate(self._current))
                self._current, self._history = None, []
        return done

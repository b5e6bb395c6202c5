"""Recognising a spoken label with Whisper: :class:`WhisperRecognizer` (whole-label
transcripts only, the unprompted veto) and :class:`CombinedRecognizer` (Whisper and
PocketSphinx on the same answer).
"""

from __future__ import annotations

import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.annotation.speech import (
    SAMPLE_RATE,
    SPOKEN_WORDS,
    LabelResult,
    SpeechError,
    _WavMixin,
    to_16k,
)
from gazelab.annotation.speech_whisper.models import DEFAULT_MODEL, resolve_model

PAD_S = 0.5
"""Silence added after the answer before encoding (s)."""
PAD_BEFORE_S = 0.5
"""Silence added before the answer (s): with it, 8 more label answers in 100 were
transcribed as their label on the tuning set (clean and 10 dB; docs/voice.md)."""
MIN_ENCODE_S = 3.0
"""Shortest window the encoder sees (s); shorter answers are padded with silence."""
MAX_TOKENS = 16
"""Most tokens decoded per answer (a label answer is one to three words; short windows
make Whisper repeat a word, which the whole-transcript rule accepts)."""
PROMPT = (
    "Neutral, anger, angry, contempt, contemptuous, disgust, disgusted, fear, afraid, scared,"
    " fearful, happy, happiness, sad, sadness, surprise, surprised."
)
"""The decoder prompt: every label word, so the model expects one of them."""
VETO_MARGIN = 2.0
"""Natural-log likelihood margin of the unprompted veto (:meth:`WhisperRecognizer.veto_lead`):
when the unprompted transcript does not name the prompted label's class, the answer is
rejected unless the label word is at most this much less likely than what the unprompted
decode heard (a likelihood ratio of e^-2 ≈ 0.14). Chosen on the tuning set
(``bench_voice.py --tuning-set --rule-near-misses 6 [--rule-draw seeded]``): the most lenient
margin that kept unrelated words <= 2 %, near-misses <= 10 % and wrong labels <= 0.5 % there,
on the hand-written near-miss list together with each of two rule-made ones (dictionary
neighbours of the label words: the most frequent, and a seeded draw). It was 1 before
:data:`UNIT_RIVAL` made the veto weigh a repeated transcript as the phrase said once
(docs/voice.md#whisper-why-label-answers-are-rejected-and-the-repeated-phrase-said-once)."""
UNIT_RIVAL = True
"""The veto also weighs the phrase the unprompted transcript repeats, said once
(:func:`repeated_unit`: "Edgar" for "Edgar Edgar Edgar"), and keeps the likelier of it and
the transcript: the label word is scored said once, so what was heard is too. On the tuning
set, at the margin each rule's goals allowed (2 with it, 1 without), 80.1 / 43.4 % of label
answers accepted and correct clean / 10 dB against 79.4 / 42.6 %, unrelated words 0.65 against
1.29 %, near-misses 9.7 / 5.7 % against 9.6 / 6.3 % (seeded / frequent list)."""
DENOISE = False
"""Steady noise taken out of the answer by spectral subtraction before encoding
(:func:`gazelab.annotation.speech.sphinx.spectral_denoise`, as for PocketSphinx). Off: on
the tuning set it gave 2-4 more label answers in 100 at 10 dB, but 2 of 272 label answers
a wrong label (goal <= 0.5 %) and more unrelated words and near-misses at every margin."""
NEIGHBOUR_VETO_MARGIN: float | None = None
"""The veto's margin when the unprompted transcript is a near-miss neighbour of a label word
(:func:`near_miss_word`: one dictionary word one phone edit from a label pronunciation, a
near-miss heard as itself): the label is accepted only when its lead is at least
``-NEIGHBOUR_VETO_MARGIN``; ``-inf`` rejects every such answer, ``None`` (the default)
uses :data:`VETO_MARGIN`. Off: on the tuning set the hard rule cost 4.4 points of clean label
answers ("fear" heard unprompted as "here") for 0.5 point of near-misses
(docs/voice.md#whisper-a-wider-near-miss-tuning-list-near-misses-heard-as-themselves)."""


# -- recogniser ---------------------------------------------------------------------------------
def _forms(word: str) -> tuple[str, ...]:
    """The written forms a label word is scored in ("fear", "Fear", "fear.", "Fear.")."""
    return (word, word.capitalize(), word + ".", word.capitalize() + ".")


def repeated_unit(text: str) -> str:
    """The phrase ``text`` repeats, lower case and without punctuation ("Edgar Edgar Edgar"
    -> "edgar", "Add this. Add this." -> "add this"); the whole text's words when it does not
    repeat; "" for no words. Short windows make Whisper repeat what it heard, and a repeated
    transcript is far less likely than the phrase said once, so the veto weighs the phrase
    once, like the label word it is compared with."""
    words = re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())
    for p in range(1, len(words) + 1):
        if all(w == words[i % p] for i, w in enumerate(words)):
            return " ".join(words[:p])
    return ""


def label_of_transcript(text: str) -> str | None:
    """The class when every word of ``text`` is a label word of that one class, else ``None``."""
    words = re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())
    classes = {SPOKEN_WORDS.get(w) for w in words}
    if not words or None in classes or len(classes) != 1:
        return None
    return classes.pop()


@cache
def english_words() -> frozenset[str]:
    """The words of the US-English pronouncing dictionary that ships with pocketsphinx."""
    from gazelab.annotation.speech import _model_dir

    with open(_model_dir() / "cmudict-en-us.dict", encoding="utf-8") as f:
        return frozenset(re.sub(r"\(\d+\)$", "", line.split(" ", 1)[0]) for line in f)


def other_word(text: str) -> str | None:
    """The word when ``text`` is one English word (repeated or not) that is not a label
    word, else ``None``."""
    words = set(re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower()))
    if len(words) != 1 or words & set(SPOKEN_WORDS):
        return None
    word = words.pop()
    return word if word in english_words() else None


@cache
def _dictionary() -> dict[str, list[tuple[str, ...]]]:
    """Every plain lower-case word of the pronouncing dictionary and its pronunciations,
    label words left out (:func:`gazelab.annotation.speech.sphinx._pronunciations`)."""
    from gazelab.annotation.speech.sphinx import _pronunciations

    return _pronunciations(lambda word: re.fullmatch(r"[a-z]{2,}", word) is not None)[0]


@cache
def _label_pronunciations() -> tuple[tuple[str, ...], ...]:
    from gazelab.annotation.speech.sphinx import _pronunciations

    return tuple(set(_pronunciations(lambda word: False)[1]))


def phone_edit_cost(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Phone edit cost of ``a`` into ``b`` (a phone inserted, deleted or put for a
    consonant: 1; a vowel for a vowel: 0.5), as in
    :func:`gazelab.annotation.speech.phone_neighbours`."""
    from gazelab.annotation.speech.sphinx import phone_distance

    return phone_distance(a, b) * max(len(a), len(b), 1)


def near_miss_word(text: str, max_cost: float = 1.0) -> str | None:
    """The word when ``text`` is one dictionary word (repeated or not) that is a near-miss
    neighbour of a label word, else ``None``.

    A neighbour: a pronunciation within phone edit cost ``max_cost`` of a label word's
    pronunciation, accent variants included — the words
    :func:`gazelab.annotation.speech.neighbour_words` lists ("beer", "anchor", "sat",
    "here" for "fear"). Label words, their forms (the first five letters of a label word)
    and homophones of a label pronunciation ("said": S EH D is a pronunciation of "sad")
    are not near-misses."""
    word = other_word(text)
    if word is None or any(word.startswith(s[:5]) for s in SPOKEN_WORDS):
        return None
    prons = _dictionary().get(word)
    if not prons:
        return None
    costs = [phone_edit_cost(p, lab) for p in prons for lab in _label_pronunciations()]
    return word if min(costs) <= max_cost and 0.0 not in costs else None


class WhisperRecognizer(_WavMixin):
    """A Whisper model (CTranslate2, int8 on the CPU) restricted to whole-label transcripts."""

    name = "whisper"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        root: Path | None = None,
        threads: int = 2,
        beam_size: int = 2,
        verify_unprompted: bool = False,
        veto_other_word: bool = True,
        veto_margin: float | None = VETO_MARGIN,
        neighbour_margin: float | None = NEIGHBOUR_VETO_MARGIN,
        full_window: bool = False,
        unit_rival: bool = UNIT_RIVAL,
        denoise: bool = DENOISE,
    ) -> None:
        try:
            import ctranslate2
            import tokenizers
            from faster_whisper.feature_extractor import FeatureExtractor
            from faster_whisper.tokenizer import Tokenizer
        except ImportError as exc:
            raise SpeechError(
                "voice.backend = 'whisper' needs faster-whisper"
                " (pip install -r requirements-voice.txt)"
            ) from exc
        folder, self.model = resolve_model(model, root)
        self.name = f"whisper:{model}"  # the session's "ready" message carries the model
        self.folder = folder
        self.beam_size = beam_size
        self.verify_unprompted = verify_unprompted
        self.veto_other_word = veto_other_word
        self.veto_margin = veto_margin
        self.neighbour_margin = neighbour_margin
        self.last_label: str | None = None  # the label before the veto (bench --sweep)
        self.last_lead = np.inf  # its veto lead; +inf when there was nothing to veto
        self.last_near = False  # the unprompted transcript was a label word's neighbour
        self.last_lead_decoded = np.inf  # the lead over the transcript as decoded (no unit)
        self.full_window = full_window
        self.unit_rival = unit_rival
        self.denoise = denoise
        self._ct2 = ctranslate2
        self._model = ctranslate2.models.Whisper(
            str(folder), device="cpu", compute_type="int8", intra_threads=threads
        )
        tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        multilingual = self._model.is_multilingual
        self._tok = Tokenizer(tok, multilingual, task="transcribe", language="en")
        self._fe = FeatureExtractor(feature_size=self._model.n_mels)
        start = [*self._tok.sot_sequence, self._tok.no_timestamps]
        self._prompted = [self._tok.sot_prev, *self._tok.encode(" " + PROMPT), *start]
        self._plain = start
        self._lock = threading.Lock()

    def _features(self, x: NDArray[np.float32]) -> Any:
        """Log-mel features of ``x`` padded with silence (``n_mels`` x even frames)."""
        if self.denoise:
            from gazelab.annotation.speech.sphinx import spectral_denoise

            x = spectral_denoise(x).astype(np.float32)
        x = np.concatenate([np.zeros(int(PAD_BEFORE_S * SAMPLE_RATE), np.float32), x])
        n = max(x.size + int(PAD_S * SAMPLE_RATE), int(MIN_ENCODE_S * SAMPLE_RATE))
        if self.full_window:
            n = max(n, 30 * SAMPLE_RATE)
        x = np.concatenate([x, np.zeros(n - x.size, np.float32)])
        f = self._fe(x, padding=0)
        frames = min(3000, f.shape[1] // 2 * 2)
        return np.ascontiguousarray(f[None, :, :frames], dtype=np.float32)

    def _decode(self, enc: Any, prompt: list[int]) -> tuple[str, float]:
        text, score, _ = self._decode_ids(enc, prompt)
        return text, score

    def _decode_ids(self, enc: Any, prompt: list[int]) -> tuple[str, float, list[int]]:
        """The transcript, its length-normalised score and its token ids."""
        r = self._model.generate(
            enc, [prompt], beam_size=self.beam_size, max_length=len(prompt) + MAX_TOKENS, return_scores=True,
            suppress_blank=True, suppress_tokens=[-1], max_initial_timestamp_index=0,
        )[0]  # fmt: skip
        ids = [t for t in r.sequences_ids[0] if t < self._tok.eot]
        score = float(r.scores[0]) if r.scores else -np.inf
        text = self._tok.decode(ids).strip()
        if len(r.sequences_ids[0]) >= MAX_TOKENS:  # cut off: the last word may be partial
            text = text.rsplit(" ", 1)[0] if " " in text else ""
        return text, score, ids

    def log_likelihoods(
        self, enc: Any, start: list[int], seqs: list[list[int]]
    ) -> NDArray[np.float64]:
        """ln P(tokens, end of text | audio, ``start``) of each token sequence, teacher-forced.

        One batched decoder call: the encoder output is repeated per sequence and each
        sequence is forced as a prefix; the decoder's logits at the forced positions and
        at the one after give the log-probability of every token and of the end."""
        e = np.asarray(enc)
        longest = max(map(len, seqs))
        res = self._model.generate(
            self._ct2.StorageView.from_array(np.repeat(e, len(seqs), axis=0)),
            [start + s for s in seqs], beam_size=1, return_logits_vocab=True,
            max_length=len(start) + 2 * longest + 4, suppress_blank=False, suppress_tokens=[],
        )  # fmt: skip
        out = np.full(len(seqs), -np.inf)
        for i, (s, r) in enumerate(zip(seqs, res, strict=True)):
            logits = r.logits[0]
            if len(logits) < len(s) + 1:
                continue
            lp = 0.0
            for k, t in enumerate([*s, self._tok.eot]):
                v = np.asarray(logits[k], np.float64)
                m = float(v.max())
                lp += float(v[t]) - m - float(np.log(np.exp(v - m).sum()))
            out[i] = lp
        return out

    def veto_lead(self, enc: Any, label: str, plain_ids: list[int], plain: str = "") -> float:
        """ln P(best label word of ``label``) − ln P(what the unprompted decode heard), both
        unprompted.

        The label's words are scored as spoken alone, in four written forms ("fear",
        "Fear", "fear.", "Fear."); the best counts. What was heard is the unprompted
        transcript as decoded and, with ``unit_rival``, the phrase it repeats said once
        (:func:`repeated_unit` of ``plain``, in the same four forms); the likelier counts.
        Negative: the model without the prompt finds the other word more likely than the
        label."""
        forms = [
            self._tok.encode(f" {v}")
            for w, c in SPOKEN_WORDS.items()
            if c == label
            for v in _forms(w)
        ]
        unit = repeated_unit(plain) if self.unit_rival else ""
        units = [self._tok.encode(f" {v}") for v in _forms(unit)] if unit else []
        ll = self.log_likelihoods(enc, self._plain, [*forms, *units, plain_ids])
        self.last_lead_decoded = float(ll[: len(forms)].max() - ll[-1])  # for bench_voice.py
        return float(ll[: len(forms)].max() - ll[len(forms) :].max())

    def answer_scores(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> dict[str, Any]:
        """Everything the decision rules can use, for one answer (``bench_voice.py --scores``):
        the prompted and the unprompted transcript, and the teacher-forced ln P, without the
        prompt, of each label word (best of its four written forms) and of both transcripts."""
        x = to_16k(audio, rate).astype(np.float32) / 32768.0
        with self._lock:
            enc = self._model.encode(self._ct2.StorageView.from_array(self._features(x)))
            ptext, _, pids = self._decode_ids(enc, self._prompted)
            utext, _, uids = self._decode_ids(enc, self._plain)
            words = list(SPOKEN_WORDS)
            forms = [self._tok.encode(f" {v}") for w in words for v in _forms(w)]
            out: dict[str, Any] = {"prompted": ptext, "plain": utext}
            unit = repeated_unit(utext)
            units = [self._tok.encode(f" {v}") for v in _forms(unit)] if unit else []
            ll = self.log_likelihoods(enc, self._plain, [*forms, *units, uids, pids])
            out["unit"] = unit
            out["unit_plain"] = (
                float(ll[len(forms) : len(forms) + len(units)].max()) if units else -np.inf
            )
            per = ll[: len(forms)].reshape(len(words), -1)
            out["words_plain"] = {w: float(v) for w, v in zip(words, per.max(axis=1), strict=True)}
            out["form_plain"] = {w: int(v) for w, v in zip(words, per.argmax(axis=1), strict=True)}
            out["u_plain"], out["p_plain"] = float(ll[-2]), float(ll[-1])
        return out

    def transcribe(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> tuple[str, str]:
        """The label-prompted and the unprompted transcript of one answer (one encoding)."""
        x = to_16k(audio, rate).astype(np.float32) / 32768.0
        if x.size == 0:
            return "", ""
        with self._lock:
            enc = self._model.encode(self._ct2.StorageView.from_array(self._features(x)))
            return self._decode(enc, self._prompted)[0], self._decode(enc, self._plain)[0]

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        x = to_16k(audio, rate).astype(np.float32) / 32768.0
        if x.size == 0:
            return LabelResult(None, "", 0.0)
        with self._lock:
            enc = self._model.encode(self._ct2.StorageView.from_array(self._features(x)))
            text, score = self._decode(enc, self._prompted)
            label = label_of_transcript(text)
            self.last_label, self.last_lead, self.last_near = label, np.inf, False
            self.last_lead_decoded = np.inf
            if label is not None and (self.verify_unprompted or self.veto_other_word):
                plain, _, plain_ids = self._decode_ids(enc, self._plain)
                vetoed = self.verify_unprompted and label_of_transcript(plain) != label
                if self.veto_other_word and self.veto_margin is None:  # the hard veto
                    self.last_lead = -np.inf if other_word(plain) is not None else np.inf
                elif self.veto_other_word and label_of_transcript(plain) != label:
                    # The unprompted decode heard something else: a likelihood-ratio test
                    # of the label word against what it heard decides.
                    self.last_lead = self.veto_lead(enc, label, plain_ids, plain)
                    self.last_near = near_miss_word(plain) is not None
                margin = self.veto_margin or 0.0
                if self.last_near and self.neighbour_margin is not None:
                    margin = min(margin, self.neighbour_margin)  # a near-miss heard as itself
                vetoed = vetoed or self.last_lead < -margin
                if vetoed:
                    return LabelResult(None, f"{text} / unprompted: {plain}", 0.0)
        return LabelResult(label, text, float(np.exp(score)) if label else 0.0)


def classes_named(text: str) -> set[str]:
    """The classes of the label words anywhere in ``text``."""
    return {SPOKEN_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in SPOKEN_WORDS}


class CombinedRecognizer(_WavMixin):
    """Whisper and PocketSphinx on the same answer; each covers the other's weakness.

    Whisper's whole-transcript rule accepts almost nothing that is not a label, but
    rejects many accented or noisy labels; PocketSphinx's grammar accepts those labels,
    but also takes other words for labels. An answer is accepted

    - with Whisper's label when Whisper accepts it (whole transcript, no veto), else
    - with PocketSphinx's label when a word of that class occurs anywhere in Whisper's
      prompted transcript ("contempt to us" for "contemptuous") and the unprompted
      transcript is not one other English word (:func:`other_word`).

    Everything else is "not understood"."""

    def __init__(self, model: str = DEFAULT_MODEL, *, root: Path | None = None) -> None:
        from gazelab.annotation.speech import PocketSphinxRecognizer

        self.whisper = WhisperRecognizer(model, root=root)
        self.sphinx = PocketSphinxRecognizer()
        self.name = f"whisper+pocketsphinx:{model}"
        self.model = f"{self.whisper.model} + pocketsphinx en-us"

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        prompted, plain = self.whisper.transcribe(audio, rate)
        label = label_of_transcript(prompted)
        if other_word(plain) is not None:
            return LabelResult(None, f"{prompted} / unprompted: {plain}", 0.0)
        if label is not None:
            return LabelResult(label, prompted, 1.0)
        ps = self.sphinx.recognize(audio, rate)
        if ps.label is not None and ps.label in classes_named(prompted):
            return LabelResult(ps.label, f"{ps.text} / whisper: {prompted}", ps.confidence)
        return LabelResult(None, f"{ps.text} / whisper: {prompted}", 0.0)

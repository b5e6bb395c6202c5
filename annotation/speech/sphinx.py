"""The default recogniser, PocketSphinx (offline English, nothing to download): a keyword
grammar of the label words, their accent variants, decoy words and common English words,
after spectral noise subtraction; a label is accepted only when it beats every other word
of the grammar by a margin in the n-best list.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.annotation.speech.base import (
    SAMPLE_RATE,
    SPOKEN_WORDS,
    LabelResult,
    SpeechError,
    label_of_words,
)
from gazelab.annotation.speech.common_words import COMMON_WORDS
from gazelab.annotation.speech.wav import _WavMixin, to_16k

N_DECOYS = 400
DECOY_SEED = 0
DECOY_MIN_DISTANCE = 0.5
N_COMMON = len(COMMON_WORDS)
"""Common English words in the grammar (all of :data:`COMMON_WORDS`, less those within
``DECOY_MIN_DISTANCE`` of a label word's pronunciation)."""
MARGIN = 0.04
"""Least lead, in natural-log path score (pocketsphinx's scaled score, ``ln(hyp.score)``),
of the best label path over the best path of any other grammar word in the n-best list:
the smallest margin that met the three never-guess goals on the tuning set
(:data:`gazelab.annotation.voice_sets.TRAINING_VOICES`) with its near-miss list widened by
rule (the 6 most frequent dictionary neighbours of each label word:
``bench_voice.py --tuning-set --rule-near-misses 6``; 0.035 with the hand-written list
alone; docs/voice.md)."""
RIVAL = False
"""With ``True``, a label that wins is decoded a second time with the grammar less its
class, and the lead over that decode's best word counts too (a likelihood ratio against
the best non-class path, which the first lattice may have pruned: lead +inf). Off: on the
tuning set it cost more label answers than the plain margin for the same rejection."""
CMN = "batch"
"""Cepstral mean normalisation over the whole answer (one decode pass; ``"live"`` needed
two passes for the same labels: measured identical on 167 tuning answers, half the time)."""
PASSES = 1
N_BEST = 300
"""Paths of the lattice's n-best list searched for the best competing word."""


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


def _pronunciations(
    keep: Callable[[str], bool],
) -> tuple[dict[str, list[tuple[str, ...]]], list[tuple[str, ...]]]:
    """The dictionary's pronunciations of the words ``keep`` selects (dictionary order;
    label words never), and every pronunciation of the label words, accent variants
    included."""
    entries: dict[str, list[tuple[str, ...]]] = {}
    labels: list[tuple[str, ...]] = []
    with open(_model_dir() / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            head, _, phones = line.strip().partition(" ")
            word = re.sub(r"\(\d+\)$", "", head)
            if word in SPOKEN_WORDS:
                labels.append(tuple(phones.split()))
            elif keep(word):
                entries.setdefault(word, []).append(tuple(phones.split()))
    labels += [tuple(p.split()) for ps in ACCENT_VARIANTS.values() for p in ps]
    return entries, labels


@cache
def common_words(n: int = N_COMMON, min_distance: float = DECOY_MIN_DISTANCE) -> tuple[str, ...]:
    """The first ``n`` of :data:`COMMON_WORDS` (most frequent first) whose every
    pronunciation lies at least ``min_distance`` (:func:`phone_distance`) from each label
    word's, accent variants included (as for :func:`decoy_words`)."""
    wanted = set(COMMON_WORDS[:n])
    prons, labels = _pronunciations(wanted.__contains__)
    return tuple(
        w
        for w in COMMON_WORDS[:n]
        if w in prons
        and all(phone_distance(p, lab) >= min_distance for p in prons[w] for lab in labels)
    )


@cache
def decoy_words(
    n: int = N_DECOYS, seed: int = DECOY_SEED, min_distance: float = DECOY_MIN_DISTANCE
) -> tuple[str, ...]:
    """A fixed sample of dictionary words that compete with the labels (rejection).

    Words whose pronunciation lies within ``min_distance`` (:func:`phone_distance`) of a
    label word's, accent variants included, are left out: they would take real answers
    from the labels (a repeat where none was needed) rather than catch other words."""
    entries, labels = _pronunciations(
        lambda word: bool(re.fullmatch(r"[a-z]{3,}", word))
        and not any(word.startswith(s[:5]) for s in SPOKEN_WORDS)  # no forms of the labels
    )
    words = list(entries)  # dictionary order
    rng = np.random.default_rng(seed)
    if min_distance <= 0:  # the plain sample (the first version's default)
        return tuple(sorted(rng.choice(words, n, replace=False).tolist()))
    chosen: list[str] = []
    for k in rng.permutation(len(words)):
        prons = entries[words[k]]  # every pronunciation goes into the grammar's dictionary
        if all(phone_distance(p, lab) >= min_distance for p in prons for lab in labels):
            chosen.append(words[k])
            if len(chosen) == n:
                break
    return tuple(sorted(chosen))


NEIGHBOUR_COST = 1.0
"""Largest edit cost (:func:`phone_neighbours`) of a dictionary word from a label word's
pronunciation for it to join the grammar as a near-miss competitor."""


def phone_neighbours(
    pron: Sequence[str], max_cost: float, phones: Sequence[str]
) -> dict[tuple[str, ...], float]:
    """Every phone string within edit cost ``max_cost`` of ``pron``, with its cost.

    Costs as in :func:`phone_distance` but not divided by the length: inserting or
    deleting a phone, or putting a consonant for another phone, costs 1; a vowel for
    another vowel 0.5. ``phones``: the phone set to insert and substitute from. ``pron``
    itself is included at cost 0."""
    seen: dict[tuple[str, ...], float] = {tuple(pron): 0.0}
    frontier = [tuple(pron)]
    while frontier:
        grown = []
        for q in frontier:
            c = seen[q]
            for i in range(len(q) + 1):
                edits: list[tuple[tuple[str, ...], float]] = []
                if c + 1 <= max_cost:
                    edits += [(q[:i] + (x,) + q[i:], c + 1) for x in phones]
                    if i < len(q):
                        edits.append((q[:i] + q[i + 1 :], c + 1))
                if i < len(q):
                    vowel = q[i] in VOWELS
                    edits += [
                        (q[:i] + (x,) + q[i + 1 :], c + (0.5 if vowel and x in VOWELS else 1))
                        for x in phones
                        if x != q[i]
                    ]
                for r, cost in edits:
                    if cost <= max_cost and seen.get(r, np.inf) > cost:
                        seen[r] = cost
                        grown.append(r)
        frontier = grown
    return seen


@cache
def neighbour_words(max_cost: float = NEIGHBOUR_COST) -> tuple[str, ...]:
    """Dictionary words that sound nearly like a label word: a pronunciation within edit
    cost ``max_cost`` (:func:`phone_neighbours`) of one of a label word's, accent variants
    included — the systematic near-miss competitors ("anchor" for "anger", "beer" for
    "fear", "sat" for "sad"), found by rule from the dictionary, not from any list of
    test words. Left out: the label words, their forms (words starting with a label
    word's first five letters), words that are not plain lower-case words, and
    homophones of a label pronunciation (cost 0: no acoustic evidence tells them apart,
    so they would only take real answers)."""
    entries, labels = _pronunciations(
        lambda word: re.fullmatch(r"[a-z]{2,}", word) is not None
        and not any(word.startswith(s[:5]) for s in SPOKEN_WORDS)
    )
    index: dict[tuple[str, ...], list[str]] = {}
    for word, prons in entries.items():
        for pron in prons:
            index.setdefault(pron, []).append(word)
    phone_set = sorted({x for p in index for x in p})
    homophones = {w for p in labels for w in index.get(p, ())}
    found: set[str] = set()
    for pron in set(labels):
        for q in phone_neighbours(pron, max_cost, phone_set):
            found.update(index.get(q, ()))
    return tuple(sorted(found - homophones))


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
(measured with espeak-ng's British, Scottish, Lancashire, West Midlands,
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
    """Offline English keyword-grammar recogniser with decoy-word rejection.

    The grammar is one word: a label word, a decoy word (:func:`decoy_words`), a common
    English word (:func:`common_words`) or, with ``neighbours`` (an edit cost), the
    dictionary's near-miss neighbours of the label words (:func:`neighbour_words`; off by
    default: it lost more label answers than the margin on the tuning set). A label is
    accepted only when its best path leads the best path of any other word by more than
    ``margin`` (:data:`MARGIN`) — in the lattice's n-best list and, with ``rival``, in a
    second decode of the grammar without the label's class; otherwise the answer is "not
    understood". ``margin=None``, ``n_common=0``, ``rival=False``, ``passes=2`` and
    ``cmn="live"`` give the recogniser as it was before these rules (docs/voice.md)."""

    name = "pocketsphinx"
    model = "en-us (bundled with the pocketsphinx package)"

    def __init__(
        self,
        *,
        words: Sequence[str] = tuple(SPOKEN_WORDS),
        n_decoys: int = N_DECOYS,
        decoy_min_distance: float = DECOY_MIN_DISTANCE,
        n_common: int = N_COMMON,
        neighbours: float | None = None,
        rival: bool = RIVAL,
        margin: float | None = MARGIN,
        noise_floor_db: float | None = 20.0,
        passes: int = PASSES,
        cmn: str = CMN,
        accent_variants: bool = True,
        denoise: bool = True,
        decoder_options: dict[str, Any] | None = None,
    ) -> None:
        from pocketsphinx import Decoder

        model = _model_dir()
        self.words = tuple(words)
        decoys = decoy_words(n_decoys, min_distance=decoy_min_distance) if n_decoys else ()
        common = common_words(n_common, decoy_min_distance) if n_common else ()
        near = neighbour_words(neighbours) if neighbours is not None else ()
        self.decoys = tuple(dict.fromkeys((*decoys, *common, *near)))
        self.margin = margin
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
                logfn=os.devnull, **{"cmn": cmn, **(decoder_options or {})},
            )  # fmt: skip
        self._decoder.add_jsgf_string("labels", grammar)
        self.rival = rival
        if rival:  # per class: the grammar without that class's words
            for c in sorted(set(SPOKEN_WORDS[w] for w in self.words)):
                others = [w for w in (*self.words, *self.decoys) if SPOKEN_WORDS.get(w) != c]
                self._decoder.add_jsgf_string(
                    f"rival_{c}",
                    "#JSGF V1.0;\ngrammar rival;\npublic <answer> = " + " | ".join(others) + " ;\n",
                )
        self._decoder.activate_search("labels")
        self.last_nbest_lead = self.last_rival_lead = 0.0
        self._lock = threading.Lock()
        self.last_label: str | None = None
        self.last_lead = 0.0

    def recognize(self, audio: NDArray[np.int16], rate: int = SAMPLE_RATE) -> LabelResult:
        x = to_16k(audio, rate).astype(np.float64)
        hyp, lead = self._decode(spectral_denoise(x) if self.denoise else x)
        text = re.sub(r"\(\d+\)", "", hyp.hypstr).strip() if hyp is not None else ""
        label = label_of_words(text)
        self.last_label, self.last_lead = label, lead  # before the margin (bench_voice --sweep)
        if label is not None and self.margin is not None and lead <= self.margin:
            # Another word of the grammar fits nearly as well: ask again rather than guess.
            return LabelResult(None, f"{text} (lead {lead:.4f} <= {self.margin:g})", 0.0)
        return LabelResult(label, text, min(lead, 1.0) if label else 0.0)

    def _decode(self, x: NDArray[np.float64]) -> tuple[Any, float]:
        """The grammar's best hypothesis for ``x`` (16 kHz float samples), or ``None``, and
        the best label path's lead over the best other word's path: the n-best list's
        (:func:`nbest_lead`) or, with ``rival``, the smaller of it and the lead over the
        rival decode's best path (both kept in ``last_nbest_lead``, ``last_rival_lead``)."""
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
            lead = 0.0
            if hyp is not None and self.margin is not None:
                paths = []
                for k, h in enumerate(self._decoder.nbest()):
                    if k >= N_BEST:
                        break
                    paths.append((re.sub(r"\(\d+\)", "", h.hypstr).strip(), float(h.score)))
                text = re.sub(r"\(\d+\)", "", hyp.hypstr).strip()
                label = label_of_words(text)
                lead = self.last_nbest_lead = nbest_lead(paths, label)
                if self.rival and label is not None and lead > -np.inf:
                    self._decoder.activate_search(f"rival_{label}")
                    self._decoder.start_utt()
                    self._decoder.process_raw(raw, full_utt=True)
                    self._decoder.end_utt()
                    other = self._decoder.hyp()
                    self._decoder.activate_search("labels")
                    self.last_rival_lead = (
                        float(np.log(max(hyp.score, 1e-300)) - np.log(max(other.score, 1e-300)))
                        if other is not None
                        else np.inf
                    )
                    lead = min(lead, self.last_rival_lead)
        return hyp, lead


def nbest_lead(paths: Sequence[tuple[str, float]], label: str | None = None) -> float:
    """How far the best path of a label word leads the best path of any word that does
    not name the same class (a decoy, a common word, or another class's label word).

    ``paths``: ``(word, score)`` of n-best paths, ``score`` as pocketsphinx reports it
    (a likelihood scaled into (0, 1]; its natural log is compared). ``label``: the class
    whose words lead (default: the class of the best label-word path). Returns
    ``ln(best of the class) - ln(best other)``; ``inf`` when no other word has a path
    (the lattice kept only that class's paths), ``-inf`` when the class has none.

    >>> round(nbest_lead([("fear", 0.70), ("few", 0.69), ("fear", 0.60)]), 4)
    0.0144
    >>> round(nbest_lead([("surprise", 0.70), ("surprised", 0.69), ("sad", 0.68)]), 4)
    0.029
    >>> nbest_lead([("happy", 0.7), ("happiness", 0.6)])
    inf
    """
    logs = [(word, float(np.log(max(score, 1e-300)))) for word, score in paths if word]
    if label is None:
        label = next((SPOKEN_WORDS[w] for w, _ in sorted(logs, key=lambda p: -p[1])
                      if w in SPOKEN_WORDS), None)  # fmt: skip
    best_label = max((s for w, s in logs if SPOKEN_WORDS.get(w) == label), default=-np.inf)
    best_other = max((s for w, s in logs if SPOKEN_WORDS.get(w) != label), default=-np.inf)
    if label is None or best_label == -np.inf:
        return -np.inf
    return float(best_label - best_other)

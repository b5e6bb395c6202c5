"""ESR, ensembles with shared representations (models/esr.py, Siqueira et al. 2020)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gazelab.models.esr import ESRError, average_vote, majority_vote
from gazelab.settings import TrainingSettings


def test_majority_vote_and_ties() -> None:
    p = np.array([
        [[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]],
        [[0.5, 0.4, 0.1], [0.1, 0.8, 0.1]],
        [[0.1, 0.8, 0.1], [0.4, 0.5, 0.1]],
        [[0.2, 0.1, 0.7], [0.1, 0.3, 0.6]],
    ])  # fmt: skip
    # sample 0: votes 0, 0, 1, 2 → class 0; sample 1: votes 2, 1, 1, 2 → tie 1 vs 2,
    # mean probabilities 0.45 vs 0.375 → class 1
    assert majority_vote(p).tolist() == [0, 1]
    assert average_vote(p).tolist() == [1, 1]  # means (.35, .4, .25) and (.175, .45, .375)
    with pytest.raises(ESRError):
        majority_vote(p[0])


@pytest.mark.tf
def test_esr_outputs_and_parameters_per_level() -> None:
    import tensorflow as tf

    from gazelab.models.esr import build_esr, predict_branches, trainable_parameters

    tf.keras.utils.set_random_seed(0)
    m = build_esr((32, 32, 1), 7, n_branches=4, level=3, width=0.125, network="wide")
    x = np.zeros((5, 32, 32, 1), "f4")
    probs = predict_branches(m, x)
    assert probs.shape == (4, 5, 7) and np.allclose(probs.sum(axis=2), 1, atol=1e-5)
    assert predict_branches(build_esr((32, 32, 1), 7, 1, 3, 0.125), x).shape == (1, 5, 7)
    # hand count at width 0.125 (filters 8, 16, 16, 32, 64), level 3: shared conv 1-3 + BN
    # (γ, β trainable), each branch conv 4-5 + BN + dense 64 → 7
    shared = (9 * 1 * 8 + 8 + 16) + (9 * 8 * 16 + 16 + 32) + (9 * 16 * 16 + 16 + 32)
    branch = (9 * 16 * 32 + 32 + 64) + (9 * 32 * 64 + 64 + 128) + (64 * 7 + 7)
    assert trainable_parameters(m) == shared + 4 * branch
    assert trainable_parameters(m, [1]) == shared + branch
    one = trainable_parameters(m, [1])
    assert trainable_parameters(m) > one > trainable_parameters(m, [])
    # branching later shares more: fewer parameters for the same ensemble size
    later = build_esr((32, 32, 1), 7, n_branches=4, level=4, width=0.125, network="wide")
    assert trainable_parameters(later) < trainable_parameters(m)
    with pytest.raises(ESRError, match="branching level"):
        build_esr((32, 32, 1), 7, level=6)


def test_paper_network_parameter_counts() -> None:
    """The ESR paper's Table 1 (8 classes), counted without TensorFlow: one network, four
    networks, ESR-4 at level 3 and at level 4, and the reductions against four networks."""
    from gazelab.models.esr import esr_parameters

    single = esr_parameters(8, n_branches=1)
    te = 4 * single
    level3, level4 = esr_parameters(8, 4, level=3), esr_parameters(8, 4, level=4)
    assert (single, te, level3, level4) == (131_208, 524_832, 355_104, 243_936)
    assert round(100 * (1 - level3 / te), 1) == 32.3
    assert round(100 * (1 - level4 / te), 1) == 53.5
    # by hand: conv 5×5 1→32 (+bias, γ, β), conv 3×3 32→64, three conv 3×3 64→64, dense 64→8
    blocks = [25 * 32 + 96, 9 * 32 * 64 + 192] + [9 * 64 * 64 + 192] * 3
    assert single == sum(blocks) + 64 * 8 + 8
    # one network is the same at every level
    assert {esr_parameters(8, 1, level) for level in range(1, 6)} == {131_208}
    # the wide network's first-version counts are still there by name
    assert esr_parameters(8, 1, network="wide") > 10 * single
    with pytest.raises(ESRError, match="network 'vgg'"):
        esr_parameters(8, network="vgg")
    with pytest.raises(ESRError, match="branching level"):
        esr_parameters(8, level=0)


def test_parameters_per_level_table() -> None:
    from gazelab.models.esr_protocols import parameters_per_level

    rows = parameters_per_level((48, 48, 1), 8, 4, 1.0)
    assert [r["esr_parameters"] for r in rows][2:4] == [355_104, 243_936]
    assert {r["te_parameters"] for r in rows} == {524_832}
    assert [r["reduction_vs_te"] for r in rows][2:4] == [0.3234, 0.5352]


@pytest.mark.tf
def test_built_paper_network_has_the_counted_parameters() -> None:
    import tensorflow as tf

    from gazelab.models.esr import build_esr, esr_parameters, trainable_parameters

    tf.keras.utils.set_random_seed(0)
    for k, level in ((1, 1), (4, 3), (4, 4)):
        m = build_esr((48, 48, 1), 8, n_branches=k, level=level)
        assert trainable_parameters(m) == esr_parameters(8, k, level)
    m = build_esr((48, 48, 1), 8, n_branches=4, level=3)
    assert trainable_parameters(m) == 355_104
    assert trainable_parameters(m, [1]) == 355_104 - 3 * (2 * (9 * 64 * 64 + 192) + 64 * 8 + 8)
    assert [layer.kernel_size for layer in m.layers if "conv" in layer.name][:2] == [(5, 5), (3, 3)]


def _tiny_data(n: int = 64, size: int = 16, classes: int = 3):  # type: ignore[no-untyped-def]
    from gazelab.models.training import TrainData

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (n, size, size, 1)).astype("f4"), rng.integers(0, classes, n)
    ids = [f"i{k}" for k in range(n)]
    return TrainData(x, y, ids, x[:16], y[:16], ids[:16])


TINY = TrainingSettings(input_size=16, batch_size=16, epochs=1, augment=False, seed=1)


@pytest.mark.tf
def test_branch_rates_freeze_what_they_should() -> None:
    import tensorflow as tf

    from gazelab.models.esr import BranchRates, build_esr, train_branch

    tf.keras.utils.set_random_seed(0)
    m = build_esr((16, 16, 1), 3, n_branches=3, level=2, width=0.0625)
    data = _tiny_data()

    def snapshot(prefix: str) -> dict[str, np.ndarray]:
        return {v.name: v.numpy().copy() for v in m.variables if v.name.startswith(prefix)}

    def same(before: dict[str, np.ndarray], prefix: str) -> bool:
        now = snapshot(prefix)
        return all(np.array_equal(before[k], now[k]) for k in before)

    train_branch(m, 1, TINY, data, BranchRates(new=1e-2, shared=1e-2), max_steps=3)
    shared, b1, b2, b3 = (snapshot(p) for p in ("shared", "branch1_", "branch2_", "branch3_"))
    assert any("moving_mean" in k for k in shared)  # batch-norm statistics are checked too
    r = train_branch(m, 2, TINY, data, BranchRates(new=1e-2, shared=0.0, previous=0.0),
                     max_steps=3)  # fmt: skip
    losses = [row["loss"] for row in r.steps]
    assert len(losses) == 3 and np.isfinite(losses).all()
    # the loss is the sum over branches 1 and 2: about 2 ln 3 at the start
    assert 1.5 < losses[0] < 3.5
    # rate 0: unchanged to the bit, batch-norm statistics included; branch 3 is not computed
    assert same(shared, "shared") and same(b1, "branch1_") and same(b3, "branch3_")
    assert not same(b2, "branch2_")  # the new branch learned
    train_branch(m, 2, TINY, data, BranchRates(new=1e-2, shared=1e-3, previous=0.0),
                 max_steps=2)  # fmt: skip
    assert not same(shared, "shared") and same(b1, "branch1_")
    b2 = snapshot("branch2_")
    train_branch(m, 3, TINY, data, BranchRates(new=1e-2, shared=0.0, previous=1e-3),
                 max_steps=2)  # fmt: skip
    assert not same(b1, "branch1_") and not same(b2, "branch2_")  # "varied": previous learn


def test_ckplus_folds_and_trials() -> None:
    from gazelab.models.esr_protocols import balanced_subset, ckplus_trial, subject_folds

    subjects = [f"S{s:03d}" for s in (5, 10, 11, 14, 22, 26, 29, 32, 34, 35, 37, 42) for _ in "ab"]
    folds = subject_folds(subjects, 10)
    # dealt in turn over the sorted ids: S005→0, S010→1, …, S035→9, S037→0, S042→1
    assert folds[:4].tolist() == [0, 0, 1, 1] and folds[-4:].tolist() == [0, 0, 1, 1]
    *parts, val, test = ckplus_trial(folds, 9, 10)
    assert len(parts) == 4
    assert set(folds[test]) == {9} and set(folds[val]) == {0}
    assert [set(folds[p]) for p in parts] == [{1}, {2}, {3}, {4}]
    with pytest.raises(ESRError, match="subject ids"):
        subject_folds(["a"] * 5 + [""], 3)
    y = np.array([0] * 10 + [1] * 3 + [2] * 7)
    sub = balanced_subset(y, 5, seed=0)
    assert np.bincount(y[sub]).tolist() == [5, 3, 5] and len(set(sub)) == 13


def test_esr_config_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.models.esr_protocols import load_esr_config
    from gazelab.settings import SettingsError

    p = tmp_path / "esr.toml"
    p.write_text('[data]\nimages = "synthetic:40:0:32"\n[esr]\nprotocol = "kfold"\n')
    with pytest.raises(SettingsError, match="protocol 'kfold'"):
        load_esr_config(p)
    p.write_text('[data]\nimages = "synthetic:40:0:32"\n[esr]\nprotocol = "fine_tune"\n')
    with pytest.raises(SettingsError, match="init"):
        load_esr_config(p)
    p.write_text('[data]\nimages = "synthetic:40:0:32"\n[esr]\nbranchs = 4\n')
    with pytest.raises(SettingsError, match="branchs"):
        load_esr_config(p)


@pytest.mark.tf
@pytest.mark.slow
def test_esr_cli_ckplus_protocol(tmp_path, out_dir) -> None:  # type: ignore[no-untyped-def]
    """`gazelab esr` on a CK+ fixture in its real layout (12 subjects): one trial of the
    10-fold protocol, ESR-2 + single network + TE of 2, Grad-CAM per branch."""
    import csv
    import shutil

    from PIL import Image

    from gazelab.app.cli import main
    from gazelab.models.synthetic import render_face

    root = tmp_path / "CK+"
    codes = [1, 3, 4, 5, 6, 7]  # anger, disgust, fear, happy, sadness, surprise
    for s in range(12):
        subj = f"S{100 + s:03d}"
        for q in range(2):
            seq, code = f"{q + 1:03d}", codes[(s + q) % len(codes)]
            d = root / "cohn-kanade-images" / subj / seq
            d.mkdir(parents=True)
            for k in range(1, 6):  # frames 1-2 neutral-ish, 3-5 the expression
                img, _ = render_face(0 if k < 3 else code, 40, seed=1000 * s + 10 * q + k)
                Image.fromarray(img).save(d / f"{subj}_{seq}_{k:08d}.png")
            lab = root / "Emotion" / subj / seq / f"{subj}_{seq}_{5:08d}_emotion.txt"
            lab.parent.mkdir(parents=True)
            lab.write_text(f"   {code:.7e}\n")
    cfg = tmp_path / "ck.toml"
    cfg.write_text(f"""[data]
images = "ck+:{root}"
last_frames = 3
crop = 0.9
[esr]
protocol = "ck+_10fold"
branches = 2
level = 3
width = 0.0625
max_trials = 1
gradcam = 3
[training]
input_size = 32
epochs = 1
batch_size = 8
""")
    out = tmp_path / "run"
    assert main(["esr", "--config", str(cfg), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["system"] for r in rows] == ["ESR-2 level 3", "single network",
                                          "traditional ensemble of 2"]  # fmt: skip
    # 12 subjects, 2 sequences × (1 neutral + 3 last frames) = 8 images each: trial 1 tests
    # on fold 0 (S100, S110) = 16 images; ESR params < TE params
    assert int(rows[0]["parameters"]) < int(rows[2]["parameters"])
    assert len(json.loads(rows[0]["branch_accuracy"])) == 2
    assert all(0 <= float(r["majority_accuracy"]) <= 1 for r in rows)
    levels = list(csv.DictReader(open(out / "parameters.csv")))
    assert [int(r["level"]) for r in levels] == [1, 2, 3, 4, 5]
    esr = [int(r["esr_parameters"]) for r in levels]
    assert esr == sorted(esr, reverse=True)  # later branching shares more
    assert (out / "trial-01" / "gradcam.png").stat().st_size > 1000
    assert (out / "trial-01" / "esr" / "esr.keras").exists()
    assert "Reference" in (out / "summary.md").read_text()  # real-layout data: paper's number
    shutil.copy(out / "trial-01" / "gradcam.png", out_dir / "esr_gradcam.png")


def test_example_configs_parse() -> None:
    """Every shipped example config is valid (datasets' paths are placeholders)."""
    from pathlib import Path

    from gazelab.models.esr_protocols import load_esr_config
    from gazelab.models.training import load_run_config
    from gazelab.models.transfer import load_transfer_config

    ex = Path(__file__).resolve().parents[1] / "examples"
    protocols = {p.name: load_esr_config(p).esr.protocol for p in sorted(ex.glob("esr-*.toml"))}
    assert protocols == {"esr-affectnet-esr9.toml": "balanced", "esr-ckplus-10fold.toml": "ck+_10fold",
                         "esr-demo.toml": "holdout", "esr-ferplus-finetune.toml": "fine_tune"}  # fmt: skip
    ck = load_esr_config(ex / "esr-ckplus-10fold.toml")
    assert (ck.last_frames, ck.esr.branches, ck.esr.level, ck.settings.training.input_size) == (
        3,
        4,
        3,
        96,
    )
    assert load_esr_config(ex / "esr-affectnet-esr9.toml").esr.max_per_class == 5000
    for p in ex.glob("transfer-*.toml"):
        assert load_transfer_config(p).settings.training.input_size in (32, 48)
    assert (
        load_run_config(ex / "prune-demo.toml").settings.training.architecture == "six_module_cnn"
    )


@pytest.mark.tf
@pytest.mark.slow
def test_fine_tune_protocol_starts_from_the_saved_esr(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`fine_tune`: the saved ESR is loaded (not rebuilt) and tested before training, each
    branch is fine-tuned on a class-balanced subset, and no baselines are trained."""
    import csv

    import tensorflow as tf

    from gazelab.models.esr import build_esr
    from gazelab.models.esr_protocols import load_esr_config, run_esr_experiment

    tf.keras.utils.set_random_seed(0)
    start = build_esr((24, 24, 1), 8, n_branches=2, level=3, width=0.0625)
    start.save(tmp_path / "start.keras")
    cfg = tmp_path / "ft.toml"
    cfg.write_text("""[data]
images = "synthetic:96:3:24"
[esr]
protocol = "fine_tune"
init = "start.keras"
max_per_class = 6
gradcam = 2
[training]
input_size = 24
epochs = 1
batch_size = 8
augment = false
""")
    rows = run_esr_experiment(load_esr_config(cfg), tmp_path / "run")
    assert [r["system"] for r in rows] == ["ESR-2 before fine-tuning", "ESR-2 fine-tuned"]
    steps = list(csv.DictReader(open(tmp_path / "run/trial-01/esr/branch1/steps.csv")))
    # 96 faces, 80 % training = 77 → at most 6 per class (8 classes) = 48 → 6 steps of 8
    assert len(steps) == 6
    tuned = tf.keras.models.load_model(tmp_path / "run/trial-01/esr/esr.keras")
    assert [w.shape for w in tuned.get_weights()] == [w.shape for w in start.get_weights()]
    pairs = zip(tuned.get_weights(), start.get_weights(), strict=True)
    assert not all(np.array_equal(a, b) for a, b in pairs)
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace("input_size = 24", "input_size = 32"))
    with pytest.raises(ESRError, match="input_size = 24"):
        run_esr_experiment(load_esr_config(bad), tmp_path / "run2")


@pytest.mark.tf
@pytest.mark.slow
def test_balanced_protocol_on_affectnet_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`balanced` on an AffectNet fixture: its validation list is the test set (the paper's
    protocol), validation is carved from training, and each branch trains on at most
    ``max_per_class`` images of every class."""
    import csv

    from gazelab.models.esr_protocols import load_esr_config, run_esr_experiment
    from tests.test_datasets import write_affectnet

    rows = [("training.csv", f"t/{i}.jpg", i % 8, 10 + i) for i in range(40)]
    rows += [("validation.csv", f"v/{i}.jpg", i % 8, 100 + i) for i in range(16)]
    write_affectnet(tmp_path / "AffectNet", rows)
    cfg = tmp_path / "an.toml"
    cfg.write_text(f"""[data]
images = "affectnet:{tmp_path / "AffectNet"}"
[esr]
protocol = "balanced"
branches = 2
width = 0.0625
max_per_class = 3
baselines = false
gradcam = 0
[training]
input_size = 16
epochs = 1
batch_size = 8
augment = false
""")
    said: list[str] = []
    run_esr_experiment(load_esr_config(cfg), tmp_path / "run", progress=said.append)
    assert "trial 1/1: 36 training, 4 validation, 16 test images" in said
    for b in (1, 2):
        steps = list(csv.DictReader(open(tmp_path / f"run/trial-01/esr/branch{b}/steps.csv")))
        assert len(steps) == 3  # ≤ 3 per class of 36 training images (4-5 per class) = 24

"""Training loop: determinism, masked → unmasked schedule, MirroredStrategy on 2 CPUs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gazelab.models.training import (
    RunResult,
    TrainData,
    experiment_runs,
    f1_at_step,
    steps_to_reach,
    summarise,
    train_run,
)
from gazelab.settings import TrainingSettings

pytestmark = pytest.mark.tf


def tiny_data(n: int = 96, size: int = 32) -> TrainData:
    from gazelab.models.architectures import to_model_input
    from gazelab.models.synthetic import synthetic_faces

    tr = synthetic_faces(n, size=size, seed=1)
    va = synthetic_faces(32, size=size, seed=2)
    shape = (size, size, 1)
    return TrainData(to_model_input(tr.images, shape), tr.labels.astype(np.int64), list(tr.ids),
                     to_model_input(va.images, shape), va.labels.astype(np.int64), list(va.ids))  # fmt: skip


SMALL = TrainingSettings(architecture="small_cnn", input_size=32, batch_size=16, epochs=2,
                         masked_epochs=1, seed=3, eval_every_steps=2)  # fmt: skip


def test_identical_runs_give_identical_losses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tiny_data()
    a = train_run(SMALL, data, name="a", out=tmp_path / "a", max_steps=8)
    b = train_run(SMALL, data, name="b", max_steps=8)
    la = [r["loss"] for r in a.steps]
    lb = [r["loss"] for r in b.steps]
    assert len(la) == 8 and la == lb  # bit-identical
    assert [r["val_macro_f1"] for r in a.steps] == [r["val_macro_f1"] for r in b.steps]
    assert all(np.isfinite(la))
    for name in ("steps.csv", "epochs.csv", "run.json", "learning_curve.png", "confusion.png",
                 "best.keras"):  # fmt: skip
        assert (tmp_path / "a" / name).stat().st_size > 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["training"]["seed"] == 3 and len(run["confusion"]) == 8
    c = train_run(SMALL.__class__(**{**SMALL.__dict__, "seed": 4}), data, max_steps=3)
    assert [r["loss"] for r in c.steps] != la[:3]


def test_masked_then_unmasked_schedule() -> None:
    data = tiny_data()
    blank = np.zeros_like(data.x_train)  # a mask that zeroes everything
    s = TrainingSettings(**{**SMALL.__dict__, "augment": False, "class_weighted": False,
                            "epochs": 3, "masked_epochs": 2})  # fmt: skip
    r = train_run(s, data, masked_train=blank)
    assert [e["phase"] for e in r.epochs] == ["masked", "masked", "unmasked"]
    steps_per_epoch = len(data.x_train) // s.batch_size
    assert len(r.steps) == 3 * steps_per_epoch
    with pytest.raises(Exception, match="do not match"):
        train_run(s, data, masked_train=blank[:10])
    # without masked images every epoch is unmasked, whatever masked_epochs says
    plain = train_run(s, data, masked_epochs=3, max_steps=2)
    assert {row["phase"] for row in plain.steps} == {"unmasked"}


def test_experiment_runs_and_summary() -> None:
    assert [n for n, _, _ in experiment_runs(["negative", "mean", "perceptive"])] == [
        "no_mask", "negative", "mean", "perceptive",
        "negative_then_no_mask", "mean_then_no_mask", "perceptive_then_no_mask",
    ]  # fmt: skip

    def run(name: str, curve: list[float]) -> RunResult:
        steps = [{"step": 10 * (i + 1), "val_macro_f1": f} for i, f in enumerate(curve)]
        return RunResult(name, steps, [], max(curve), curve[-1], None)

    res = {"no_mask": run("no_mask", [0.2, 0.5, 0.7, 0.8]),
           "neg": run("neg", [0.3, 0.8, 0.85, 0.9]), "mean": run("mean", [0.1, 0.2, 0.3, 0.4])}  # fmt: skip
    assert steps_to_reach(res["neg"], 0.8) == 20
    rows = {r["run"]: r for r in summarise(res)}
    assert rows["no_mask"]["steps_to_baseline_final"] == 40
    assert rows["neg"]["ratio_to_baseline_steps"] == 0.5
    assert rows["mean"]["steps_to_baseline_final"] is None
    # a run with 2 masked then 2 unmasked evaluations: the baseline after 20 steps is 0.5
    mixed = run("neg_then_no_mask", [0.1, 0.2, 0.6, 0.7])
    for i, row in enumerate(mixed.steps):
        row["phase"] = "masked" if i < 2 else "unmasked"
    rows = {r["run"]: r for r in summarise({**res, "neg_then_no_mask": mixed})}
    assert rows["neg_then_no_mask"]["unmasked_steps"] == 20  # steps 20 -> 40
    assert rows["neg_then_no_mask"]["baseline_at_unmasked_steps"] == 0.5
    assert rows["neg"]["baseline_at_unmasked_steps"] is None  # no phases: not a mixed run
    assert f1_at_step(res["no_mask"], 20) == 0.5 and f1_at_step(res["no_mask"], 5) is None
    assert f1_at_step(res["no_mask"], 35) == 0.7


MIRRORED = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gazelab.tests.test_training import tiny_data, SMALL
from gazelab.models.training import train_run
from gazelab.settings import TrainingSettings
s = TrainingSettings(**{**SMALL.__dict__, "augment": False, "strategy": sys.argv[1]})
r = train_run(s, tiny_data(), max_steps=6)
print(json.dumps({"replicas": r.replicas,
                  "loss": [x["loss"] for x in r.steps],
                  "devices": len(tf.config.list_logical_devices("CPU"))}))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_matches_one_device() -> None:
    out = {}
    for strategy in ("default", "mirrored"):
        proc = subprocess.run([sys.executable, "-c", MIRRORED, strategy], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[strategy] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert "MirroredStrategy" not in proc.stderr or strategy == "mirrored"
    assert out["mirrored"]["devices"] == 2
    assert out["mirrored"]["replicas"] == 2 and out["default"]["replicas"] == 1
    one, two = np.array(out["default"]["loss"]), np.array(out["mirrored"]["loss"])
    assert len(one) == len(two) == 6
    # step 1 (same weights, synchronised batch norm): equal to float precision; later steps
    # drift by the order of reductions (all-reduce of two half-batch gradients), < 1 %
    assert abs(one[0] - two[0]) < 1e-5 * one[0], (one, two)
    assert np.allclose(one, two, rtol=1e-2), (one, two)


def test_registry_builds_every_architecture() -> None:
    from gazelab.models.architectures import ArchitectureError, build_model

    m = build_model("mobilenet_v2", (32, 32, 1), 8)
    assert m.output_shape == (None, 8) and m.layers[-1].activation.__name__ == "softmax"
    for name, size in (("inception_v3", 75), ("xception", 71)):
        assert build_model(name, (size, size, 3), 8).output_shape == (None, 8)
    with pytest.raises(ArchitectureError, match="at least 75"):
        build_model("inception_v3", (32, 32, 1), 8)
    with pytest.raises(ArchitectureError, match="unknown architecture"):
        build_model("vgg", (32, 32, 1), 8)


def test_reading_note_names_the_mask_only_runs_at_or_under_chance():
    from gazelab.models.training import reading_note

    rows = [{"run": r, "final_macro_f1": f} for r, f in (
        ("no_mask", 0.91), ("negative", 0.04), ("mean", 0.125), ("perceptive", 0.30),
        ("negative_then_no_mask", 0.02), ("mean_then_no_mask", 0.8))]  # fmt: skip
    rows[5] |= {"unmasked_steps": 40, "baseline_at_unmasked_steps": 0.75}
    note = reading_note(rows)
    assert "chance macro-F1 is about 0.125" in note[0]
    assert len(note) == 4 and note[1].startswith("negative, mean never saw an unmasked image")
    assert note[2].startswith("Do the masked epochs give a warm start")
    assert note[3] == "- mean_then_no_mask: 0.800 after 40 unmasked steps, baseline 0.750: ahead"
    rows[5]["baseline_at_unmasked_steps"] = 0.79
    assert reading_note(rows)[3].endswith("baseline 0.790: level")
    assert reading_note(rows[:1] + rows[3:4], n_classes=4) == [
        "Validation is always on unmasked images; chance macro-F1 is about 0.250."
    ]  # perceptive at 0.30 is over chance: no second line
    rows[0]["final_macro_f1"] = 0.2  # a baseline that did not learn: nothing to compare
    assert len(reading_note(rows)) == 2
    assert reading_note(rows)[1].startswith("The no-mask baseline ends at 0.200, under twice")


def test_macro_f1_averages_the_classes_present_and_names_the_absent() -> None:
    from gazelab import CLASSES
    from gazelab.models.scores import classification_scores, macro_f1, scores_markdown

    # 7 classes present (no neutral, as CK+ crops), every prediction right: 1.0, not 7/8
    y = np.array([k for k in range(1, 8) for _ in range(3)])
    s = classification_scores(y, y)
    assert s["macro_f1"] == 1.0 and s["accuracy"] == 1.0
    assert s["absent"] == ["neutral"] and s["per_class"]["neutral"]["f1"] is None
    # hand-made: anger 4 images (3 right, 1 called neutral), happy 2 (1 right, 1 anger)
    a, h, n = CLASSES.index("anger"), CLASSES.index("happy"), CLASSES.index("neutral")
    t = np.array([a, a, a, a, h, h])
    p = np.array([a, a, a, n, h, a])
    s = classification_scores(t, p)
    f1_anger = 2 * 3 / (2 * 3 + 1 + 1)  # TP 3, FP 1 (the happy), FN 1 (the neutral)
    f1_happy = 2 * 1 / (2 * 1 + 0 + 1)
    assert s["per_class"]["anger"]["f1"] == pytest.approx(f1_anger)
    assert s["per_class"]["happy"]["f1"] == pytest.approx(f1_happy)
    assert s["macro_f1"] == pytest.approx((f1_anger + f1_happy) / 2)
    assert macro_f1(t, p) == pytest.approx((f1_anger + f1_happy) / 2)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert s["predicted_absent"] == 1 and len(s["absent"]) == 6
    assert s["confusion"][a][n] == 1 and s["confusion"][h][a] == 1
    md = scores_markdown(s)
    assert "over the 2 classes present: **0.708**" in md
    assert "| anger | 1 | 3 | 0 | 0 | 0 | 0 | 0 | 0 |" in md  # counts: 1 called neutral


def test_run_report_has_per_class_f1_and_confusion_counts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.models.training import write_run

    conf = np.zeros((8, 8), dtype=int)
    conf[1, 1], conf[1, 2], conf[5, 5] = 5, 1, 4  # neutral and five other classes absent
    res = RunResult("r", [{"step": 1, "epoch": 1, "loss": 1.0, "val_macro_f1": 0.9}],
                    [{"epoch": 1}], 0.9, 0.9, tmp_path, conf.tolist())  # fmt: skip
    write_run(res, tmp_path, SMALL)
    run = json.loads((tmp_path / "run.json").read_text())
    sc = run["scores_at_best"]
    assert sc["present"] == ["anger", "happy"] and "neutral" in sc["absent"]
    assert sc["macro_f1"] == pytest.approx((2 * 5 / 11 + 1.0) / 2)
    md = (tmp_path / "report.md").read_text()
    assert "| anger | 0 | 5 | 1 | 0 | 0 | 0 | 0 | 0 |" in md and "| happy |" in md

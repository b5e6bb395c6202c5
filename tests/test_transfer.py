"""Memory integrity across datasets (models/transfer.py, Tannugi et al. 2019)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from gazelab.models.transfer import (
    STRATEGIES,
    TRAINED_LAYERS,
    TransferError,
    fraction_subset,
    reading_note,
    table_markdown,
)
from gazelab.settings import TrainingSettings


@pytest.mark.tf
def test_each_strategy_trains_exactly_the_layers_it_names() -> None:
    import tensorflow as tf

    from gazelab.models.architectures import simplified_vgg
    from gazelab.models.training import TrainData, train_run
    from gazelab.models.transfer import strategy_plan

    tf.keras.utils.set_random_seed(0)
    start = simplified_vgg((16, 16, 1), 8, width=0.0625).get_weights()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (32, 16, 16, 1)).astype("f4"), rng.integers(0, 8, 32)
    data = TrainData(x, y, [str(i) for i in range(32)], x[:8], y[:8], [str(i) for i in range(8)])
    t = TrainingSettings(input_size=16, batch_size=16, epochs=1, augment=False,
                         learning_rate=1e-2)  # fmt: skip
    weighted = [la.name for la in simplified_vgg((16, 16, 1), 8, width=0.0625).layers
                if la.weights]  # conv, batch norm (statistics included), fc  # fmt: skip
    assert len(weighted) == 6 + 6 + 3
    for strategy in ("FC", "FC+CL", "RE", "FU"):  # FU: every layer (run_transfer starts it fresh)
        model = simplified_vgg((16, 16, 1), 8, width=0.0625)
        model.set_weights(start)
        before = {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in weighted}
        train_run(t, data, plan=lambda m=model, s=strategy: strategy_plan(m, s, 1e-2),
                  max_steps=2, n_classes=8)  # fmt: skip
        after = {n: model.get_layer(n).get_weights() for n in weighted}
        changed = {
            n
            for n in weighted
            if any(map(lambda a, b: not np.array_equal(a, b), before[n], after[n]))
        }
        named = set(weighted) if TRAINED_LAYERS[strategy] is None else set(TRAINED_LAYERS[strategy])
        assert changed == named, strategy
    assert TRAINED_LAYERS["FC+CL"] == ("conv3_2", "bn3_2", "fc1", "fc2", "scores")
    # BL: the source model as is, nothing trained on the target
    with pytest.raises(TransferError, match="BL trains nothing"):
        strategy_plan(model, "BL", 1e-3)
    with pytest.raises(TransferError, match="does not have"):
        strategy_plan(tf.keras.Sequential([tf.keras.layers.Dense(2, name="fc1")]), "FC", 1e-3)


@pytest.mark.tf
def test_simplified_vgg_has_the_papers_size() -> None:
    from gazelab.models.architectures import simplified_vgg

    m = simplified_vgg((48, 48, 1), 7)
    n = m.count_params()
    assert 19.0e6 < n < 19.4e6  # the paper: 19.2 M
    assert [la.rate for la in m.layers if "drop" in la.name] == [0.5, 0.5]
    names = [la.name for la in m.layers]
    assert names.index("drop1") == names.index("fc1") + 1
    assert names.index("drop2") == names.index("fc2") + 1


def test_fraction_subsets_nest_and_table_layout() -> None:
    half, full = fraction_subset(101, 0.5, 3), fraction_subset(101, 1.0, 3)
    assert len(half) == 50 and len(full) == 101 and set(half) <= set(full)
    rows = [{"strategy": "BL", "fraction": None, "source_test": 0.6835, "target_test": 0.403}]
    rows += [{"strategy": s, "fraction": f, "source_test": 0.5, "target_test": 0.25}
             for s in STRATEGIES[1:] for f in (0.5, 1.0)]  # fmt: skip
    md = table_markdown(rows, "FER", "JAFFE").splitlines()
    assert md[0].startswith("| test set | BL | FC 50 % | FC 100 % | FC+CL 50 %")
    assert md[2] == "| source (FER) | 68.3 | " + " | ".join(["50.0"] * 8) + " |"
    assert md[3].startswith("| target (JAFFE) | 40.3 | 25.0")


def test_reading_note_says_when_the_baseline_learned_nothing() -> None:
    # the old demo: BL 22 % on its 100 source test images, 50 % on 20 target images
    note = reading_note(0.22, 100, 20, 8)
    assert note.startswith("Chance is 12.5 %; the test sets hold 100 source and 20 target")
    assert "(one target image = 5.0 points)" in note
    assert "BL scores 22.0 % on its own source test set, under twice chance" in note
    # 25 % is exactly twice chance: learned (a little); 64.5 %: no warning either
    assert "under twice chance" not in reading_note(0.25, 200, 40, 8)
    assert reading_note(0.645, 200, 40, 8).endswith("(one target image = 2.5 points).")


@pytest.mark.tf
@pytest.mark.slow
def test_transfer_cli_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.cli import main

    cfg = tmp_path / "tr.toml"
    cfg.write_text("""[transfer]
source = "synthetic:160:0:24:subjects=16"
target = "synthetic:80:1:24:subjects=10:renderer=b"
width = 0.0625
[training]
input_size = 24
epochs = 1
batch_size = 16
augment = false
""")
    out = tmp_path / "run"
    assert main(["transfer", "--config", str(cfg), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert [(r["strategy"], r["fraction"]) for r in rows] == [("BL", "")] + [
        (s, f) for s in STRATEGIES[1:] for f in ("0.5", "1.0")]  # fmt: skip
    # subject-independent 80/10/10 of 10 target subjects: 8 training subjects × 8 images
    assert {r["target_train_images"] for r in rows[1:]} == {"32", "64"}
    assert all(0 <= float(r[k]) <= 1 for r in rows for k in ("source_test", "target_test"))
    assert "| source (synthetic:160" in (out / "table.md").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text("[transfer]\nfractions = [0.5, 1.5]\n")
    assert main(["transfer", "--config", str(bad)]) == 2

"""Distinctiveness pruning (models/pruning.py, Narayan & Ge) on hand-built feature maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.models.pruning import (
    PruningError,
    distinctiveness_plan,
    normalised_activations,
    pairwise_angles,
    prune,
    prune_model,
)


def test_normalisation_and_angles_on_hand_made_vectors() -> None:
    a = np.array([[0.0, 2.0, 5.0], [1.0, 1.0, 5.0], [2.0, 0.0, 5.0]])
    v = normalised_activations(a)
    assert np.allclose(v[:, 0], [-0.5, 0, 0.5]) and np.allclose(v[:, 1], [0.5, 0, -0.5])
    assert np.allclose(v[:, 2], 0)  # a constant map has no direction
    ang = pairwise_angles(a)
    assert ang[0, 1] == pytest.approx(180.0, abs=1e-5) and ang[0, 0] == pytest.approx(0, abs=1e-5)
    assert np.isnan(ang[0, 2])
    # 2-D vectors at a known angle: (-.5, .5, .5) vs (-.5, -.5, .5) → arccos(1/3)
    b = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert pairwise_angles(b)[0, 1] == pytest.approx(np.degrees(np.arccos(1 / 3)))


def test_plan_never_removes_both_maps_of_a_similar_pair() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(100, 1))
    acts = np.hstack([base, base * 2 + 1, base + 1e-3 * rng.normal(size=(100, 1)),
                      rng.normal(size=(100, 1))])  # fmt: skip
    plan = distinctiveness_plan(acts, 10, 170)
    # maps 0, 1, 2 are all alike: two are merged into a survivor, one of them stays
    assert len(plan.merged) == 2 and plan.kept == [0, 3]
    assert set(plan.merged.values()) == {0}
    with pytest.raises(PruningError, match="similar < complementary"):
        distinctiveness_plan(acts, 20, 10)


def hand_built(tmp_path: Path | None = None):  # type: ignore[no-untyped-def]
    """1×1 conv over 6 input channels, so a map's pooled value is a linear projection of
    the channel means: maps 0–3 look at channels 0–3, map 4 duplicates map 1 exactly,
    map 5 is map 2 negated (exactly opposite after normalisation)."""
    import tensorflow as tf

    L = tf.keras.layers
    m = tf.keras.Sequential([L.Input((4, 4, 6)), L.Conv2D(6, 1, name="maps"),
                             L.GlobalAveragePooling2D(), L.Dense(3, name="out")], name="hand")  # fmt: skip
    k = np.zeros((1, 1, 6, 6), "f4")
    for i in range(4):
        k[0, 0, i, i] = 1.0
    k[..., 4] = k[..., 1]
    k[..., 5] = -k[..., 2]
    bias = np.array([0.1, 0.2, 0.3, 0.4, 0.2, -0.3], "f4")
    m.get_layer("maps").set_weights([k, bias])
    rng = np.random.default_rng(1)
    m.get_layer("out").set_weights([rng.normal(size=(6, 3)).astype("f4"), np.zeros(3, "f4")])
    x = rng.uniform(0, 1, (200, 4, 4, 6)).astype("f4")
    return m, x


@pytest.mark.tf
def test_pruning_removes_exactly_the_duplicate_and_the_opposite_pair(tmp_path: Path) -> None:
    import tensorflow as tf

    m, x = hand_built()
    y = m.predict(x, verbose=0).argmax(axis=1)
    pruned, res = prune(m, x, y, similar_deg=10, complementary_deg=170)
    assert res.plan.merged == {4: 1} and res.plan.complementary == (2, 5)
    assert res.plan.kept == [0, 1, 3]
    assert pruned.get_layer("maps").filters == 3
    assert res.parameters_before - res.parameters_after == 3 * (6 + 1) + 3 * 3
    assert res.accuracy_before == 1.0

    # merging an exact duplicate changes nothing: no complementary removal here
    merged_only, res2 = prune(m, x, y, similar_deg=10, complementary_deg=180)
    assert res2.plan.removed == [4]
    assert np.allclose(merged_only.predict(x, verbose=0), m.predict(x, verbose=0), atol=1e-5)
    assert res2.accuracy_after == 1.0

    # a pruned model is an ordinary Keras model with fewer channels
    merged_only.save(tmp_path / "pruned.keras")
    back = tf.keras.models.load_model(tmp_path / "pruned.keras", compile=False, safe_mode=True)
    assert back.get_layer("maps").filters == 5
    assert np.allclose(back.predict(x[:8], verbose=0), merged_only.predict(x[:8], verbose=0))


@pytest.mark.tf
def test_pruning_slices_batch_norm_and_refuses_other_layouts() -> None:
    import tensorflow as tf

    from gazelab.models.architectures import build_model
    from gazelab.models.pruning import PruningPlan

    tf.keras.utils.set_random_seed(0)
    m = build_model("six_module_cnn", (48, 48, 1), 7)
    convs = [la for la in m.layers if type(la).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [16, 32, 64, 128, 256, 256]
    last = convs[-1].name
    plan = PruningPlan(256, 10, 170, {5: 3}, (7, 9))
    pruned = prune_model(m, last, plan)
    bn = [la for la in pruned.layers if type(la).__name__ == "BatchNormalization"][-1]
    assert bn.get_weights()[0].shape == (253,)
    ref = [la for la in m.layers if type(la).__name__ == "BatchNormalization"][-1]
    assert np.array_equal(bn.get_weights()[3], np.delete(ref.get_weights()[3], [5, 7, 9]))
    with pytest.raises(PruningError, match="followed by"):
        prune_model(m, convs[0].name, PruningPlan(16, 10, 170))


@pytest.mark.tf
def test_prune_cli_writes_a_smaller_model_and_its_record(tmp_path: Path) -> None:
    import json

    import tensorflow as tf

    from gazelab.app.cli import main
    from gazelab.models.architectures import build_model, load_classifier

    tf.keras.utils.set_random_seed(0)
    build_model("six_module_cnn", (48, 48, 1), 8).save(tmp_path / "m.keras")
    args = ["prune", "--model", str(tmp_path / "m.keras"), "--images", "synthetic:40:0:48",
            "--similar", "20", "--complementary", "160"]  # fmt: skip
    assert main(args) == 0
    rec = json.loads((tmp_path / "m-pruned.json").read_text())
    pruned = load_classifier(tmp_path / "m-pruned.keras")
    assert pruned.get_layer("conv6").filters == 256 - rec["maps_pruned"]
    assert rec["parameters_after"] == pruned.count_params() and rec["n_images"] == 40
    assert main([*args[:-4], "--similar", "50", "--complementary", "40"]) == 2  # bad thresholds

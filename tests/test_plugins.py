"""Analyzers and mask algorithms added as one module each: a module in
analysis/analyzers/ or models/mask_algorithms/ registers itself and is at once a settings
choice, a CLI choice and usable; here the two shipped that way, input × gradient and the
random-mask control, are checked by their numbers and through the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.models.masks import MaskParameters, model_mask, negative_mask


def test_the_random_mask_control_zeroes_the_negative_fraction_at_random_reproducibly() -> None:
    rng = np.random.default_rng(0)
    r = rng.gamma(2.0, size=(40, 50)).astype(np.float32)
    p = MaskParameters(negative_fraction=0.1)
    m = model_mask(r, "random", p)
    assert m.dtype == bool and m.shape == r.shape
    assert int((~m).sum()) == 200  # exactly 10 % of 2 000 pixels, as negative zeroes
    assert np.array_equal(m, model_mask(r.copy(), "random", p))  # seeded by the map
    neg = negative_mask(r, 0.1)
    assert int((~neg).sum()) == 200
    overlap = np.mean(~m[~neg])  # random picks are not the most relevant pixels
    assert overlap < 0.3
    other = model_mask(r + 1, "random", p)
    assert not np.array_equal(m, other)


def test_analyzer_and_mask_modules_are_settings_and_cli_choices() -> None:
    from gazelab.app.cli import build_parser
    from gazelab.settings import AnalysisSettings, SettingsError

    assert AnalysisSettings(analyzer="input_x_gradient").analyzer == "input_x_gradient"
    with pytest.raises(SettingsError):
        AnalysisSettings(analyzer="no_such")
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    saliency = next(a for a in sub["saliency"]._actions if a.dest == "analyzer")
    masks = next(a for a in sub["masks"]._actions if a.dest == "algorithm")
    assert "input_x_gradient" in saliency.choices and "random" in masks.choices


@pytest.mark.tf
def test_input_x_gradient_is_the_input_times_the_logit_gradient(tmp_path: Path) -> None:
    import tensorflow as tf

    from gazelab.analysis.saliency import _pre_softmax, relevance

    tf.keras.utils.set_random_seed(1)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((12, 12, 2)),
        tf.keras.layers.Conv2D(4, 3, activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(3, activation="softmax"),
    ])  # fmt: skip
    x = np.random.default_rng(2).random((5, 12, 12, 2)).astype(np.float32)
    got = relevance(model, x, "input_x_gradient", batch_size=2)
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = _pre_softmax(model)(xt, training=False)
        sel = tf.gather(out, tf.argmax(out, axis=-1), axis=1, batch_dims=1)
    want = (tape.gradient(sel, xt).numpy() * x).sum(axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    assert (got < 0).any() and (got > 0).any()  # signed, unlike gradient's magnitude


@pytest.mark.tf
def test_random_masks_export_from_the_command_line(tmp_path: Path) -> None:
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.app.cli import main
    from gazelab.models.architectures import build_model
    from gazelab.models.export import load_masks

    tf.keras.utils.set_random_seed(0)
    build_model("small_cnn", (32, 32, 1), len(CLASSES)).save(tmp_path / "m.keras")
    args = ["masks", "--images", "synthetic:6:2:32", "--model", str(tmp_path / "m.keras"),
            "--algorithm", "random", "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 0
    masks = load_masks(tmp_path / "out")
    assert len(masks.ids) == 6
    kept = np.mean([masks.mask(i).mean() for i in masks.ids])
    assert kept == pytest.approx(0.9, abs=0.01)

"""ESR, ensembles with shared representations (models/esr.py, seed 002)."""

from __future__ import annotations

import numpy as np
import pytest

from gazelab.models.esr import ESRError, average_vote, majority_vote


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
    m = build_esr((32, 32, 1), 7, n_branches=4, level=3, width=0.125)
    x = np.zeros((5, 32, 32, 1), "f4")
    probs = predict_branches(m, x)
    assert probs.shape == (4, 5, 7) and np.allclose(probs.sum(axis=2), 1, atol=1e-5)
    one = trainable_parameters(m, [1])
    assert trainable_parameters(m) > one > trainable_parameters(m, [])
    # branching later shares more: fewer parameters for the same ensemble size
    later = build_esr((32, 32, 1), 7, n_branches=4, level=4, width=0.125)
    assert trainable_parameters(later) < trainable_parameters(m)
    with pytest.raises(ESRError, match="branching level"):
        build_esr((32, 32, 1), 7, level=5)


@pytest.mark.tf
def test_branch_rates_freeze_what_they_should() -> None:
    import tensorflow as tf

    from gazelab.models.esr import BranchRates, build_esr, train_branch

    tf.keras.utils.set_random_seed(0)
    m = build_esr((16, 16, 1), 3, n_branches=3, level=2, width=0.0625)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (64, 16, 16, 1)).astype("f4"), rng.integers(0, 3, 64)

    def snapshot(prefix: str) -> dict[str, np.ndarray]:
        return {v.name: v.numpy().copy() for v in m.variables if v.name.startswith(prefix)}

    def same(before: dict[str, np.ndarray], prefix: str) -> bool:
        now = snapshot(prefix)
        return all(np.array_equal(before[k], now[k]) for k in before)

    train_branch(m, 1, x, y, BranchRates(new=1e-2, shared=1e-2), steps=3)
    shared, b1, b2, b3 = (snapshot(p) for p in ("shared", "branch1_", "branch2_", "branch3_"))
    losses = train_branch(m, 2, x, y, BranchRates(new=1e-2, shared=0.0, previous=0.0), steps=3)
    assert len(losses) == 3 and np.isfinite(losses).all()
    # rate 0: unchanged to the bit, batch-norm statistics included
    assert same(shared, "shared") and same(b1, "branch1_") and same(b3, "branch3_")
    assert not same(b2, "branch2_")  # the new branch learned
    train_branch(m, 2, x, y, BranchRates(new=1e-2, shared=1e-3, previous=0.0), steps=2)
    assert not same(shared, "shared") and same(b1, "branch1_")

"""Intervals over images: a mean with its Student-t interval (:func:`mean_ci`) and a ratio
of means with its paired bootstrap interval (:func:`ratio_ci`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def mean_ci(values: ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its two-sided ``level`` interval (Student's t, ``n − 1``
    degrees of freedom); ``nan`` half-width for fewer than two values."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    t = float(stats.t.ppf(0.5 + level / 2, df=v.size - 1))
    return float(v.mean()), t * float(v.std(ddof=1)) / math.sqrt(v.size)


def ratio_ci(
    observed: ArrayLike, baseline: ArrayLike, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """``mean(observed) / mean(baseline)`` over paired per-image values, with a percentile
    bootstrap ``level`` interval (images resampled with replacement, ``seed``); ``nan``
    where the baseline mean is 0 or there are under two images."""
    o = np.asarray(observed, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    mb = float(b.mean()) if b.size else 0.0
    if b.size == 0 or mb == 0:
        return math.nan, math.nan, math.nan
    r = float(o.mean()) / mb
    if o.size < 2:
        return r, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, o.size, size=(n_boot, o.size))
    bb = b[idx].mean(axis=1)
    ok = bb != 0
    rs = o[idx].mean(axis=1)[ok] / bb[ok]
    lo, hi = np.quantile(rs, [(1 - level) / 2, (1 + level) / 2])
    return r, float(lo), float(hi)

"""Observed scores set against each baseline, per comparison kind and metric
(:func:`baseline_summary`), and the one sentence that says how much of the agreement is
layout (:func:`layout_sentence`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gazelab.analysis.baselines.rows import BASELINES
from gazelab.analysis.baselines.stats import mean_ci, ratio_ci


def _per_image(
    rows: Sequence[dict[str, Any]], metric: str, keep: Callable[[dict[str, Any]], bool]
) -> dict[str, float]:
    acc: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        v = r.get(metric)
        if keep(r) and v is not None and math.isfinite(float(v)):
            acc[r["image_id"]].append(float(v))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def baseline_summary(
    observed: Sequence[dict[str, Any]],
    baselines: Sequence[dict[str, Any]],
    metrics: Sequence[str] | None = None,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    """Observed scores set against each baseline, per comparison kind and metric.

    ``observed``: :attr:`~gazelab.analysis.compare.Comparison.rows` (``kind`` ``human`` /
    ``model``); ``baselines``: :func:`baseline_rows`. The centre rows of a kind are those of
    the (image, annotator) pairs that kind has observed rows for. Each row: ``versus``,
    ``baseline``, ``metric``, ``images`` (with both values), ``observed``, ``baseline_mean``,
    ``difference`` and ``difference_ci`` (± half-width, t over images), ``ratio``,
    ``ratio_low``, ``ratio_high`` (paired bootstrap over images), ``layout_share``
    (baseline / observed).
    """
    from gazelab.analysis.scoring import METRICS

    out: list[dict[str, Any]] = []
    for kind in ("human", "model"):
        obs_rows = [r for r in observed if r.get("kind") == kind]
        if not obs_rows:
            continue
        pairs = {(r["image_id"], r["annotator"]) for r in obs_rows}
        for name in BASELINES:

            def keep(r: dict[str, Any], name: str = name, kind: str = kind,
                     pairs: set[tuple[Any, Any]] = pairs) -> bool:  # fmt: skip
                if r["baseline"] != name:
                    return False
                if name == "centre":
                    return (r["image_id"], r["annotator"]) in pairs
                return bool(r["versus"] == kind)

            for m in metrics or METRICS:
                o = _per_image(obs_rows, m, lambda r: True)
                b = _per_image(baselines, m, keep)
                common = sorted(set(o) & set(b))
                ov = np.array([o[k] for k in common])
                bv = np.array([b[k] for k in common])
                d, h = mean_ci(ov - bv, level) if common else (math.nan, math.nan)
                r, lo, hi = ratio_ci(ov, bv, level) if common else (math.nan,) * 3
                om = float(ov.mean()) if common else math.nan
                bm = float(bv.mean()) if common else math.nan
                out.append({
                    "versus": kind, "baseline": name, "metric": m, "images": len(common),
                    "observed": om, "baseline_mean": bm, "difference": d, "difference_ci": h,
                    "ratio": r, "ratio_low": lo, "ratio_high": hi,
                    "layout_share": bm / om if common and om != 0 else math.nan,
                })  # fmt: skip
    return out


def _find(summary: Sequence[dict[str, Any]], kind: str, base: str, m: str) -> dict[str, Any] | None:
    for r in summary:
        if r["versus"] == kind and r["baseline"] == base and r["metric"] == m:
            return r
    return None


def layout_sentence(summary: Sequence[dict[str, Any]], metric: str = "iou") -> str:
    """One sentence: how much of the observed ``metric`` (human vs human, model vs human)
    maps of *other* images already reach, and what is left specific to the image."""
    parts = []
    for kind, who in (("human", "human-vs-human"), ("model", "model-vs-human")):
        r = _find(summary, kind, "shuffled", metric)
        if r is None:
            continue
        if not math.isfinite(r["layout_share"]):  # observed 0 (or no image): no share
            if r["images"] and math.isfinite(r["baseline_mean"]):
                parts.append(
                    f"{r['baseline_mean']:.3f} against an observed {r['observed']:.3f} "
                    f"of the {who} {metric.upper()} (no share of nothing; {r['images']} images)"
                )
            continue
        ci = f" ± {r['difference_ci']:.3f}" if math.isfinite(r["difference_ci"]) else ""
        parts.append(
            f"{r['layout_share']:.0%} of the {who} {metric.upper()} "
            f"({r['baseline_mean']:.3f} of {r['observed']:.3f}; image-specific part "
            f"{r['difference']:+.3f}{ci}, {r['images']} images)"
        )
    if not parts:
        return f"No shuffled-image baseline could be formed for {metric} (one image per size)."
    return (
        "Maps made on other images of the set (the face layout, nothing of the image) reach "
        + " and ".join(parts)
        + "; only the image-specific part is agreement about the image itself."
    )

"""Baselines for map agreement: how much of a human-vs-human or model-vs-human score is
just the layout of a face (SPEC §6).

Faces shown aligned put eyes, nose and mouth at nearly the same pixels in every image, so
two maps agree a good deal even when they were made on *different* images. A score can
only be read against that floor. Two baselines, each scored exactly as the observed pairs
(:func:`~gazelab.analysis.metrics.map_scores`, the reference annotator's map and fixated
pixels on image *i*):

shuffled image
    The other side of the pair (annotator *b*, or the model) on other images *j ≠ i* of
    the set with the same pixel size: the next ``draws`` images after *i* in a seeded
    random cyclic order of those images; the scores are averaged over them. What remains
    of the observed score above it is specific to image *i* (Borji & Itti 2013 call its
    NSS/AUC form "shuffled" metrics).

centre bias
    One map that does not look at the image at all: the mean of every human map of the
    *other* images (leave-one-image-out, each map scaled to unit mass), or a centred
    isotropic Gaussian (``sigma_fraction`` × the shorter side). Its support is cut to the
    most salient pixels covering the mean support of one human map, so IoU compares areas
    of the same size (a mean of many maps is non-zero almost everywhere).

For each comparison kind (``human``, ``model``) and metric, per image: the mean of the
observed rows and the mean of the baseline rows; over images: their means, the
difference with a Student-t 95 % confidence interval over images, and the ratio of the
means with a paired bootstrap 95 % interval over images. :func:`layout_sentence` says in
one sentence how much of the agreement is layout.

References: Borji, A., Itti, L. (2013) State-of-the-art in visual attention modeling.
IEEE TPAMI 35(1), 185-207; Tatler, B. W. (2007) The central fixation bias in scene viewing.
J. Vision 7(14):4.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.analysis.metrics import PreparedMap, map_scores

if TYPE_CHECKING:
    from gazelab.analysis.compare import Comparison

BASELINES = ("shuffled", "centre")
"""Baseline names, in report order."""

CENTRES = ("mean", "gaussian")
"""Centre-bias maps: the leave-one-image-out mean of the human maps, or a centred Gaussian."""


# -- maps ----------------------------------------------------------------------------------------
def centre_gaussian(shape: tuple[int, int], sigma_fraction: float = 0.25) -> NDArray[np.float64]:
    """An isotropic Gaussian ``(H, W)`` centred on the image, peak 1, sigma =
    ``sigma_fraction`` × min(H, W) pixels (pixel centres at ``k + 0.5``)."""
    h, w = shape
    if h <= 0 or w <= 0 or sigma_fraction <= 0:
        raise ValueError(f"shape {shape} and sigma_fraction {sigma_fraction} must be > 0")
    sigma = sigma_fraction * min(h, w)
    y = (np.arange(h) + 0.5 - h / 2.0) ** 2
    x = (np.arange(w) + 0.5 - w / 2.0) ** 2
    return np.exp(-(y[:, None] + x[None, :]) / (2.0 * sigma * sigma))


def keep_top_fraction(m: ArrayLike, fraction: float) -> NDArray[np.float64]:
    """``m`` with all but its ``round(fraction × size)`` largest positive pixels set to 0
    (ties at the cut kept, so a few more may stay); the whole map for ``fraction >= 1``."""
    a = np.array(m, dtype=np.float64)
    k = int(round(fraction * a.size))
    if k >= a.size:
        return a
    if k <= 0:
        return np.zeros_like(a)
    cut = np.partition(a.ravel(), a.size - k)[a.size - k]
    a[(a < cut) | (a <= 0)] = 0.0
    return a


def unit_mass(m: ArrayLike) -> NDArray[np.float64]:
    """``m / sum(m)`` (a map without mass stays zeros)."""
    a = np.asarray(m, dtype=np.float64)
    s = float(a.sum())
    return a / s if s > 0 else np.zeros_like(a)


def leave_one_out_means(
    maps_per_image: Sequence[Sequence[NDArray[np.float64]]],
) -> list[NDArray[np.float64] | None]:
    """For every image, the mean of the unit-mass maps of all *other* images of the same
    shape (``None`` where there is none). ``maps_per_image[i]``: the maps made on image
    ``i`` (any number, each ``(H, W)``)."""
    sums: dict[tuple[int, ...], NDArray[np.float64]] = {}
    counts: dict[tuple[int, ...], int] = defaultdict(int)
    own: list[tuple[tuple[int, ...], NDArray[np.float64] | None, int]] = []
    for maps in maps_per_image:
        if not maps:
            own.append(((), None, 0))
            continue
        shape = tuple(maps[0].shape)
        s = np.sum([unit_mass(m) for m in maps], axis=0)
        sums[shape] = sums[shape] + s if shape in sums else s
        counts[shape] += len(maps)
        own.append((shape, s, len(maps)))
    out: list[NDArray[np.float64] | None] = []
    for shape, s, n in own:
        if not shape:
            out.append(None)
            continue
        rest = counts[shape] - n
        out.append(None if rest == 0 else (sums[shape] - s) / rest)
    return out


def support_fraction(maps: Sequence[NDArray[np.float64]]) -> float:
    """Mean fraction of pixels > 0 over ``maps`` (0 for none)."""
    return float(np.mean([np.count_nonzero(m > 0) / m.size for m in maps])) if maps else 0.0


# -- statistics ---------------------------------------------------------------------------------
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


# -- on a comparison ----------------------------------------------------------------------------
def baseline_rows(
    comp: Comparison,
    *,
    draws: int = 3,
    seed: int = 0,
    centre: str = "mean",
    sigma_fraction: float = 0.25,
    max_images: int | None = 100,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Baseline scores of every observed pair of ``comp`` (see the module docstring).

    Rows: ``image_id``, ``annotator`` (the reference, whose map and fixations on the image
    are scored against), ``versus`` (``human`` / ``model`` for shuffled rows, ``-`` for the
    centre row that serves both), ``reference`` (``b``, ``model`` or ``centre``),
    ``baseline`` (``shuffled`` / ``centre``), ``draws`` (images averaged) and every metric
    of :data:`~gazelab.analysis.compare.METRICS`; NaN where no other image of the same
    size has the partner's map.

    Partners: the images of one size are put in a seeded random cyclic order, and each
    image's partners are the next ``draws`` images in it (every image is a partner
    ``draws`` times); scoring along the order prepares each image's maps once.

    ``max_images``: score the pairs of at most this many images (a seeded sample; the
    partners are drawn from all images and the centre map is the mean over all), so a
    study of thousands of images costs about as much as 100 (the baselines of an image
    cost about twice its observed scoring: ``draws`` scores per pair on maps prepared once).
    ``None``: every image.
    """
    from gazelab.analysis.scoring import METRICS, fixation_map
    from gazelab.gaze.heatmaps import fixation_heatmap

    if centre not in CENTRES:
        raise ValueError(f"centre {centre!r}: choose one of {', '.join(CENTRES)}")
    images = comp.images
    shapes = [(int(im.image.shape[0]), int(im.image.shape[1])) for im in images]

    def human_map(i: int, a: str) -> NDArray[np.float64]:
        return images[i].humans[a].heatmap_or_build()

    def model_map(i: int) -> NDArray[np.float64] | None:
        im = images[i]
        if im.model_heatmap is not None:
            return im.model_heatmap
        if im.model_points is None:
            return None
        c, r = im.kernel_px
        return fixation_heatmap(im.model_points, shapes[i], c, r)

    # centre maps: one pass over the human maps (built where not kept, and let go) for the
    # unit-mass sum per image size and the mean support; each image's own maps are taken
    # out of the sum when it is scored (leave-one-image-out)
    totals: dict[tuple[int, int], NDArray[np.float64]] = {}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    supports: list[float] = []
    for i, im in enumerate(images):
        for a in im.humans:
            m = human_map(i, a)
            supports.append(np.count_nonzero(m > 0) / m.size)
            if centre == "mean":
                um = unit_mass(m)
                totals[shapes[i]] = totals[shapes[i]] + um if shapes[i] in totals else um
                counts[shapes[i]] += 1
    frac = float(np.mean(supports)) if supports else 0.0

    def centre_map(i: int, own: list[NDArray[np.float64]]) -> PreparedMap | None:
        if centre == "gaussian":
            c = centre_gaussian(shapes[i], sigma_fraction)
        else:
            rest = counts[shapes[i]] - len(own)
            if rest <= 0:
                return None
            c = (totals[shapes[i]] - sum(unit_mass(m) for m in own)) / rest
        return PreparedMap(keep_top_fraction(c, frac))

    has_model = [im.model_points is not None or im.model_heatmap is not None for im in images]
    nan = dict.fromkeys(METRICS, math.nan)

    # Partners: the images of each size in a seeded cyclic order; image k's partners are
    # the next ``draws`` images in that order. Images are scored along the order, so each
    # image's maps are prepared once and serve it and the ``draws`` images before it (a
    # window of prepared maps), instead of once per pair and draw.
    rng = np.random.default_rng([seed, len(images)])
    todo: list[int] = []
    partners_of: dict[int, list[int]] = {}
    sample = max_images is not None and len(images) > max_images
    for shape in sorted(set(shapes)):
        group = [i for i in range(len(images)) if shapes[i] == shape]
        cycle = [group[k] for k in rng.permutation(len(group))]
        n_partners = min(draws, len(cycle) - 1)
        for k, i in enumerate(cycle):
            partners_of[i] = [cycle[(k + d) % len(cycle)] for d in range(1, n_partners + 1)]
        # a sample is a stretch of the random order (itself a random sample), the group's
        # share of max_images, so the window of prepared maps is shared along it
        share = max(1, int(max_images * len(group) / len(images))) if sample else len(cycle)  # type: ignore[operator]
        todo += cycle[:share]

    def mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
        if not scores:
            return dict(nan)
        out = {}
        for m in METRICS:
            v = np.array([s.get(m, math.nan) for s in scores], dtype=np.float64)
            v = v[np.isfinite(v)]
            out[m] = float(v.mean()) if v.size else math.nan
        return out

    import threading

    lock, finished = threading.Lock(), [0]

    def score_run(run: list[int]) -> list[tuple[int, list[dict[str, Any]]]]:
        window: dict[int, dict[str, PreparedMap | None]] = {}

        def prepared(j: int) -> dict[str, PreparedMap | None]:
            if j not in window:
                maps: dict[str, PreparedMap | None] = {
                    a: PreparedMap(human_map(j, a)) for a in images[j].humans
                }
                mm = model_map(j) if has_model[j] else None
                maps["\0model"] = None if mm is None else PreparedMap(mm)
                window[j] = maps
                while len(window) > draws + 1:  # oldest first (dicts keep insertion order)
                    del window[next(iter(window))]
            return window[j]

        done = []
        for i in run:
            im = images[i]
            own = prepared(i)
            js = partners_of[i]
            others = [prepared(j) for j in js]
            cm = centre_map(i, [m.x for a, m in own.items() if a != "\0model" and m is not None])
            rows: list[dict[str, Any]] = []
            for a, g in im.humans.items():
                ref = own[a]
                assert ref is not None
                fixated = fixation_map(g.points, shapes[i])
                base = {"image_id": im.image_id, "annotator": a}
                rows.append({**base, "versus": "-", "reference": "centre", "baseline": "centre",
                             "draws": 0 if cm is None else 1,
                             **(dict(nan) if cm is None else map_scores(ref, cm, fixated))})  # fmt: skip
                if has_model[i]:
                    sc = [map_scores(ref, m, fixated)
                          for o in others if (m := o.get("\0model")) is not None]  # fmt: skip
                    rows.append({**base, "versus": "model", "reference": "model",
                                 "baseline": "shuffled", "draws": len(sc), **mean_scores(sc)})  # fmt: skip
                for b in im.humans:
                    if b == a:
                        continue
                    sc = [
                        map_scores(ref, m, fixated) for o in others if (m := o.get(b)) is not None
                    ]
                    rows.append({**base, "versus": "human", "reference": b, "baseline": "shuffled",
                                 "draws": len(sc), **mean_scores(sc)})  # fmt: skip
            done.append((i, rows))
            if progress:
                with lock:
                    finished[0] += 1
                    progress(finished[0], len(todo))
        return done

    # one contiguous run of the order per core (NumPy releases the GIL in its array work);
    # rows come back in image order
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(len(todo), os.cpu_count() or 1))
    size = -(-len(todo) // workers) if todo else 1
    runs = [todo[k : k + size] for k in range(0, len(todo), size)]
    by_image: dict[int, list[dict[str, Any]]] = {}
    from gazelab.analysis.compare import blas_threads

    with blas_threads(1), ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(score_run, runs):
            by_image.update(result)
    return [r for i in sorted(by_image) for r in by_image[i]]


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
        if r is None or not math.isfinite(r["layout_share"]):
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


# -- one image at a time (the viewer) -----------------------------------------------------------
def partner_indices(
    shapes: Sequence[tuple[int, int]], draws: int = 3, seed: int = 0
) -> dict[int, list[int]]:
    """The shuffled-image partners of every image, by the rule of :func:`baseline_rows`:
    the images of one size (``shapes[i]``, ``(H, W)`` px) in a seeded random cyclic order,
    image *i*'s partners the next ``draws`` images after it (fewer where the size has
    fewer other images). Same ``shapes``, ``draws`` and ``seed``: same partners."""
    rng = np.random.default_rng([seed, len(shapes)])
    out: dict[int, list[int]] = {}
    for shape in sorted(set(shapes)):
        group = [i for i in range(len(shapes)) if shapes[i] == shape]
        cycle = [group[k] for k in rng.permutation(len(group))]
        n_partners = min(draws, len(cycle) - 1)
        for k, i in enumerate(cycle):
            out[i] = [cycle[(k + d) % len(cycle)] for d in range(1, n_partners + 1)]
    return out


def image_baseline_rows(
    image: Any,
    partners: Sequence[Any],
    centre_map: NDArray[np.float64] | None,
) -> list[dict[str, Any]]:
    """The rows of :func:`baseline_rows` for one image, as it scores them.

    ``image``: an :class:`~gazelab.analysis.compare.ImageAnalysis` (its human maps, fixation
    points and model map or points); ``partners``: the ImageAnalysis of its partner images
    (:func:`partner_indices`); ``centre_map``: the centre-bias map ``(H, W)`` already cut to
    one map's area (:func:`centre_for_image`), or ``None`` (NaN centre rows)."""
    from gazelab.analysis.scoring import METRICS, fixation_map
    from gazelab.gaze.heatmaps import fixation_heatmap

    def model_map(im: Any) -> NDArray[np.float64] | None:
        if im.model_heatmap is not None:
            return np.asarray(im.model_heatmap, dtype=np.float64)
        if im.model_points is None:
            return None
        c, r = im.kernel_px
        return fixation_heatmap(im.model_points, tuple(im.image.shape[:2]), c, r)

    nan = dict.fromkeys(METRICS, math.nan)

    def mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
        if not scores:
            return dict(nan)
        out = {}
        for m in METRICS:
            v = np.array([s.get(m, math.nan) for s in scores], dtype=np.float64)
            v = v[np.isfinite(v)]
            out[m] = float(v.mean()) if v.size else math.nan
        return out

    shape = (int(image.image.shape[0]), int(image.image.shape[1]))
    has_model = image.model_points is not None or image.model_heatmap is not None
    others: list[dict[str, PreparedMap | None]] = []
    for p in partners:
        maps: dict[str, PreparedMap | None] = {
            a: PreparedMap(g.heatmap_or_build()) for a, g in p.humans.items()
        }
        mm = model_map(p) if has_model else None
        maps["\0model"] = None if mm is None else PreparedMap(mm)
        others.append(maps)
    cm = None if centre_map is None else PreparedMap(centre_map)
    rows: list[dict[str, Any]] = []
    for a, g in image.humans.items():
        ref = PreparedMap(g.heatmap_or_build())
        fixated = fixation_map(g.points, shape)
        base = {"image_id": image.image_id, "annotator": a}
        rows.append({**base, "versus": "-", "reference": "centre", "baseline": "centre",
                     "draws": 0 if cm is None else 1,
                     **(dict(nan) if cm is None else map_scores(ref, cm, fixated))})  # fmt: skip
        if has_model:
            sc = [map_scores(ref, m, fixated)
                  for o in others if (m := o.get("\0model")) is not None]  # fmt: skip
            rows.append({**base, "versus": "model", "reference": "model",
                         "baseline": "shuffled", "draws": len(sc), **mean_scores(sc)})  # fmt: skip
        for b in image.humans:
            if b == a:
                continue
            sc = [map_scores(ref, m, fixated) for o in others if (m := o.get(b)) is not None]
            rows.append({**base, "versus": "human", "reference": b, "baseline": "shuffled",
                         "draws": len(sc), **mean_scores(sc)})  # fmt: skip
    return rows


class CentreTotals:
    """The running sums behind the centre-bias map of :func:`baseline_rows`: per image size
    the sum of the unit-mass human maps and their count, and the support fraction of every
    map. :meth:`add` each image's human maps in image order, then :meth:`centre_for_image`."""

    def __init__(self) -> None:
        self.totals: dict[tuple[int, int], NDArray[np.float64]] = {}
        self.counts: dict[tuple[int, int], int] = defaultdict(int)
        self.supports: list[float] = []

    def add(self, maps: Sequence[NDArray[np.float64]]) -> None:
        """One image's human maps (each ``(H, W)``, all one size)."""
        for m in maps:
            shape = (int(m.shape[0]), int(m.shape[1]))
            self.supports.append(np.count_nonzero(m > 0) / m.size)
            um = unit_mass(m)
            self.totals[shape] = self.totals[shape] + um if shape in self.totals else um
            self.counts[shape] += 1

    @property
    def fraction(self) -> float:
        """Mean support fraction of the maps added (0 for none)."""
        return float(np.mean(self.supports)) if self.supports else 0.0

    def centre_for_image(
        self,
        shape: tuple[int, int],
        own: Sequence[NDArray[np.float64]],
        centre: str = "mean",
        sigma_fraction: float = 0.25,
    ) -> NDArray[np.float64] | None:
        """The centre-bias map of an image of ``shape`` whose human maps ``own`` were added:
        the mean of the others' unit-mass maps (or the centred Gaussian) cut to one map's
        mean support; ``None`` when no other image of the size has a map."""
        if centre not in CENTRES:
            raise ValueError(f"centre {centre!r}: choose one of {', '.join(CENTRES)}")
        if centre == "gaussian":
            c = centre_gaussian(shape, sigma_fraction)
        else:
            rest = self.counts[shape] - len(own)
            if rest <= 0:
                return None
            c = (self.totals[shape] - sum(unit_mass(m) for m in own)) / rest
        return keep_top_fraction(c, self.fraction)

"""Baseline rows, scored exactly as the observed pairs: for a whole comparison
(:func:`baseline_rows`), or one image at a time as the viewer shows it
(:func:`partner_indices`, :func:`image_baseline_rows`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gazelab.analysis.baselines.maps import (
    CENTRES,
    centre_gaussian,
    keep_top_fraction,
)
from gazelab.analysis.metrics import PreparedMap, map_scores
from gazelab.analysis.metrics.prepared import OrderStore

if TYPE_CHECKING:
    from gazelab.analysis.compare import Comparison


BASELINES = ("shuffled", "centre")
"""Baseline names, in report order."""


def _mean_scores(scores: list[dict[str, float]], metrics: Sequence[str]) -> dict[str, float]:
    """Each metric's mean over a baseline's draws, leaving out non-finite values (NaN where
    none is finite, or there are no draws)."""
    out = {}
    for m in metrics:
        v = np.array([s.get(m, math.nan) for s in scores], dtype=np.float64)
        v = v[np.isfinite(v)]
        out[m] = float(v.mean()) if v.size else math.nan
    return out


def baseline_rows(
    comp: Comparison,
    *,
    draws: int = 3,
    seed: int = 0,
    centre: str = "mean",
    sigma_fraction: float = 0.25,
    max_images: int | None = 100,
    progress: Callable[[int, int], None] | None = None,
    orders: OrderStore | None = None,
    human_pairs: str = "all",
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
    ``None``: every image. ``orders``: where each prepared map's sort is kept between runs
    (the saliency cache; the rows are the same with or without).

    ``human_pairs``: the pairing of the observed human rows
    (:func:`~gazelab.analysis.scoring.score_image`). ``all``: a shuffled row per ordered
    pair (*a*, *b*), *b*'s map on the partner images. ``others``: one shuffled row per
    annotator *a* (``reference`` ``others``), scored against the pooled map of every
    annotator but *a* on each partner image
    (:func:`~gazelab.analysis.scoring.leave_one_out_sums`), so the baselines cost A maps per
    image and draw as the observed rows do; a partner image only *a* looked at is not a
    draw.
    """
    from gazelab.analysis.scoring import (
        METRICS,
        OTHERS,
        check_human_pairs,
        fixation_map,
        leave_one_out_sums,
        pooled_total,
    )

    check_human_pairs(human_pairs)

    if centre not in CENTRES:
        raise ValueError(f"centre {centre!r}: choose one of {', '.join(CENTRES)}")
    images = comp.images
    shapes = [(int(im.image.shape[0]), int(im.image.shape[1])) for im in images]

    def human_map(i: int, a: str) -> NDArray[np.float64]:
        return images[i].humans[a].heatmap_or_build()

    def model_map(i: int) -> NDArray[np.float64] | None:
        # the kept map, else built with the image's kernel (an ellipse where it is one)
        out: NDArray[np.float64] | None = images[i].model_heatmap_or_build()
        return out

    # centre maps: one pass over the human maps (built where not kept, and let go) for the
    # unit-mass sum per image size and the mean support; each image's own maps are taken
    # out of the sum when it is scored (leave-one-image-out)
    totals: dict[tuple[int, int], NDArray[np.float64]] = {}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    supports: list[float] = []

    masses: dict[tuple[int, str], float] = {}  # each human map's mass (its dense sum)

    def image_pass(i: int) -> list[tuple[str, float, float, NDArray[np.float64] | None]]:
        """Image i's human maps (built, then let go): annotator, support fraction, mass
        and unit-mass map (unit_mass's floats: the map over its dense sum)."""
        out = []
        for a in images[i].humans:
            m = np.asarray(human_map(i, a), dtype=np.float64)
            mass = float(m.sum())
            um = (m / mass if mass > 0 else np.zeros_like(m)) if centre == "mean" else None
            out.append((a, np.count_nonzero(m > 0) / m.size, mass, um))
        return out

    # the maps are built on every core, a few images ahead; the sums are taken in image
    # order on this thread (the same floats as one loop)
    import os
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    n_workers = max(1, min(len(images), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        ahead: deque[Future[list[tuple[str, float, float, NDArray[np.float64] | None]]]]
        ahead = deque()
        nxt = 0
        for i in range(len(images)):
            while nxt < len(images) and len(ahead) < 2 * n_workers:
                ahead.append(pool.submit(image_pass, nxt))
                nxt += 1
            for a, fraction, mass, um in ahead.popleft().result():
                supports.append(fraction)
                masses[i, a] = mass
                if um is not None:
                    if shapes[i] in totals:
                        np.add(totals[shapes[i]], um, out=totals[shapes[i]])
                    else:
                        totals[shapes[i]] = um  # a new array (unit_mass): summed into in place
                    counts[shapes[i]] += 1
    frac = float(np.mean(supports)) if supports else 0.0

    def centre_map(i: int, own: list[tuple[str, PreparedMap]]) -> PreparedMap | None:
        """The centre map of image i, whose human maps (prepared) are ``own``."""
        if centre == "gaussian":
            c = centre_gaussian(shapes[i], sigma_fraction)
        else:
            rest = counts[shapes[i]] - len(own)
            if rest <= 0:
                return None
            # the sum of the own maps at unit mass, from their supports: the floats of
            # sum(unit_mass(m) for m in own) (0 + x is x; a zero pixel adds 0)
            mine = np.zeros(shapes[i][0] * shapes[i][1], dtype=np.float64)
            for a, m in own:
                if masses[i, a] > 0:
                    mine[m.support] += m.values / masses[i, a]
            c = (totals[shapes[i]] - mine.reshape(shapes[i])) / rest
        return PreparedMap(keep_top_fraction(c, frac, copy=False), orders)

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

    import threading

    lock, finished = threading.Lock(), [0]

    Dense = tuple[dict[str, NDArray[np.float64]], NDArray[np.float64] | None, PreparedMap | None]

    def score_run_others(run: list[int]) -> list[tuple[int, list[dict[str, Any]]]]:
        """``score_run`` for ``human_pairs = "others"``: the window keeps each image's dense
        human maps, their sum and the prepared model map; the pooled maps of the partners
        are summed and prepared per (annotator, partner) and let go (their sorts are not
        kept in ``orders``: each is used once)."""
        window: dict[int, Dense] = {}

        def dense(j: int) -> Dense:
            if j not in window:
                maps = {a: np.asarray(human_map(j, a), dtype=np.float64) for a in images[j].humans}
                total = pooled_total(maps.values()) if maps else None
                mm = model_map(j) if has_model[j] else None
                window[j] = (maps, total, None if mm is None else PreparedMap(mm, orders))
                while len(window) > draws + 1:  # oldest first (dicts keep insertion order)
                    del window[next(iter(window))]
            return window[j]

        done = []
        for i in run:
            im = images[i]
            own_maps = dense(i)[0]
            own = {a: PreparedMap(m, orders) for a, m in own_maps.items()}
            others = [dense(j) for j in partners_of[i]]
            cm = centre_map(i, list(own.items()))
            # each annotator a of image i against the pooled map of every annotator but a
            # on each partner image j (all of j's maps when a did not look at j; no draw
            # when only a did), partner by partner
            pooled_scores: dict[str, list[dict[str, float]]] = {a: [] for a in im.humans}
            fixated_of = {a: fixation_map(g.points, shapes[i]) for a, g in im.humans.items()}
            if len(im.humans) > 1:
                for maps_j, total_j, _ in others:
                    if total_j is None:
                        continue
                    loo = leave_one_out_sums(list(maps_j.values())) if len(maps_j) > 1 else None
                    for b in maps_j:
                        pooled_b = next(loo) if loo is not None else None
                        if b in own and pooled_b is not None:
                            pooled_scores[b].append(
                                map_scores(own[b], PreparedMap(pooled_b), fixated_of[b])
                            )
                    pooled_all: PreparedMap | None = None
                    for a in im.humans:
                        if a not in maps_j:
                            if pooled_all is None:
                                pooled_all = PreparedMap(total_j)
                            pooled_scores[a].append(map_scores(own[a], pooled_all, fixated_of[a]))
            rows: list[dict[str, Any]] = []
            for a in im.humans:
                ref = own[a]
                fixated = fixated_of[a]
                base = {"image_id": im.image_id, "annotator": a}
                rows.append({**base, "versus": "-", "reference": "centre", "baseline": "centre",
                             "draws": 0 if cm is None else 1,
                             **(dict(nan) if cm is None else map_scores(ref, cm, fixated))})  # fmt: skip
                if has_model[i]:
                    sc = [map_scores(ref, o[2], fixated) for o in others if o[2] is not None]
                    rows.append({**base, "versus": "model", "reference": "model",
                                 "baseline": "shuffled", "draws": len(sc),
                                 **_mean_scores(sc, METRICS)})  # fmt: skip
                if len(im.humans) < 2:
                    continue  # no observed human row to match
                sc = pooled_scores[a]
                rows.append({**base, "versus": "human", "reference": OTHERS, "baseline": "shuffled",
                             "draws": len(sc), **_mean_scores(sc, METRICS)})  # fmt: skip
            done.append((i, rows))
            if progress:
                with lock:
                    finished[0] += 1
                    progress(finished[0], len(todo))
        return done

    def score_run(run: list[int]) -> list[tuple[int, list[dict[str, Any]]]]:
        window: dict[int, dict[str, PreparedMap | None]] = {}

        def prepared(j: int) -> dict[str, PreparedMap | None]:
            if j not in window:
                maps: dict[str, PreparedMap | None] = {
                    a: PreparedMap(human_map(j, a), orders) for a in images[j].humans
                }
                mm = model_map(j) if has_model[j] else None
                maps["\0model"] = None if mm is None else PreparedMap(mm, orders)
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
            cm = centre_map(i, [(a, m) for a, m in own.items() if a != "\0model" and m is not None])
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
                                 "baseline": "shuffled", "draws": len(sc),
                                 **_mean_scores(sc, METRICS)})  # fmt: skip
                for b in im.humans:
                    if b == a:
                        continue
                    sc = [
                        map_scores(ref, m, fixated) for o in others if (m := o.get(b)) is not None
                    ]
                    rows.append({**base, "versus": "human", "reference": b, "baseline": "shuffled",
                                 "draws": len(sc), **_mean_scores(sc, METRICS)})  # fmt: skip
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
        scorer = score_run_others if human_pairs == OTHERS else score_run
        for result in pool.map(scorer, runs):
            by_image.update(result)
    return [r for i in sorted(by_image) for r in by_image[i]]


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

    def model_map(im: Any) -> NDArray[np.float64] | None:
        if im.model_heatmap is not None:
            return np.asarray(im.model_heatmap, dtype=np.float64)
        out: NDArray[np.float64] | None = im.model_heatmap_or_build()  # the image's kernel
        return out

    nan = dict.fromkeys(METRICS, math.nan)

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
                         "baseline": "shuffled", "draws": len(sc), **_mean_scores(sc, METRICS)})  # fmt: skip
        for b in image.humans:
            if b == a:
                continue
            sc = [map_scores(ref, m, fixated) for o in others if (m := o.get(b)) is not None]
            rows.append({**base, "versus": "human", "reference": b, "baseline": "shuffled",
                         "draws": len(sc), **_mean_scores(sc, METRICS)})  # fmt: skip
    return rows

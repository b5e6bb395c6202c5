"""One image's scores: every annotator's map against the model's and against every other
annotator's (docs/analysis-pipeline.md), the one scorer of ``gazelab compare``, the viewer and
``gazelab heatmaps``.

The pieces, each used by all three:

* :func:`annotator_gaze`: one annotator's trial on an image (a
  :class:`~gazelab.analysis.human.TrialGaze`) as an :class:`AnnotatorGaze` in image pixels:
  its fixation points (events or samples), centroids, onsets and durations, and what its
  heatmap is built from (points, per-point weights, kernel, image size).
* :meth:`AnnotatorGaze.heatmap_or_build`: the human heatmap in image pixels, the span-limited
  Gaussian of the heatmap settings with the kernel of the trial's own placement (where
  the image was on screen, :mod:`gazelab.analysis.placement`): circular in degrees, so
  an ellipse in image pixels on non-square pixels or a stretched image, the circle's own
  code path otherwise; each fixation event weighted by its duration (ms) when
  ``heatmap.duration_weighting`` is on and the points are events.
* :func:`score_image`: given an image's :class:`ImageAnalysis` (its annotators) and,
  optionally, the model's relevance map, the model's ``n`` most relevant pixels and their
  heatmap (:func:`~gazelab.analysis.saliency.model_heatmap`, the image's kernel), the pointing
  game on the diagnostic regions, and the rows: per annotator *a*, *a* vs the model, then
  *a* vs every other annotator *b*, each with every metric of :data:`METRICS`
  (:func:`~gazelab.analysis.metrics.map_scores`: the reference is *a*'s map and *a*'s
  fixated pixels). Each map is prepared once for all its pairs.

Reference: Bylinskii, Z., Judd, T., Oliva, A., Torralba, A., Durand, F. (2019) What do
different evaluation metrics tell us about saliency models? IEEE TPAMI 41(3), 740-757.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.analysis.metrics import MAP_METRICS, PreparedMap, map_scores
from gazelab.analysis.metrics.prepared import OrderStore
from gazelab.errors import GazelabError

if TYPE_CHECKING:
    from gazelab.analysis.human import TrialGaze
    from gazelab.gaze.heatmaps import HeatmapKernel

KernelXY = tuple[float, float, float, float]
"""An elliptical heatmap kernel ``(c_x, c_y, r_x, r_y)``, px: Gaussian widths and cut-off
radii in x and in y."""


def kernel_of(kernel_px: tuple[float, float], kernel_xy: KernelXY | None) -> HeatmapKernel:
    """The :class:`~gazelab.gaze.heatmaps.HeatmapKernel` of a ``(c, radius)`` circle, or of
    ``(c_x, c_y, r_x, r_y)`` when given (an ellipse)."""
    from gazelab.gaze.heatmaps import HeatmapKernel

    if kernel_xy is None:
        return HeatmapKernel(float(kernel_px[0]), float(kernel_px[1]))
    cx, cy, rx, ry = (float(v) for v in kernel_xy)
    return HeatmapKernel(cx, rx, cy, ry)


def kernel_dict(kernel_px: tuple[float, float], kernel_xy: KernelXY | None) -> dict[str, float]:
    """A kernel as a result records it: ``c`` and ``radius`` (the circle, or for an ellipse
    the circle of the same area, for readers of one number) and ``c_x, c_y, r_x, r_y``."""
    cx, cy, rx, ry = kernel_xy or (kernel_px[0], kernel_px[0], kernel_px[1], kernel_px[1])
    return {"c": float(kernel_px[0]), "radius": float(kernel_px[1]),
            "c_x": float(cx), "c_y": float(cy), "r_x": float(rx), "r_y": float(ry)}  # fmt: skip


METRICS = (*MAP_METRICS, "nss", "auc_judd")
"""Report columns, in order: iou, spearman, cosine_distance, cc, sim, kld, nss, auc_judd."""
PAPER_METRICS = ("iou", "spearman", "cosine_distance")

ROW_COLUMNS = ("image_id", "class", "annotator", "reference", "kind", "label", *METRICS)
"""The columns of a row of :func:`score_image` (``compare``'s ``rows.csv``)."""


class AnalysisError(GazelabError, RuntimeError):
    """The sessions cannot be analysed (no sessions, images missing, no fixations)."""


@dataclass(frozen=True)
class AnnotatorGaze:
    """One annotator's look at one image, in image pixels."""

    annotator: str
    session_id: int
    label: str | None
    points: NDArray[np.float64]  # (N, 2) fixation points (events or samples)
    fixations: NDArray[np.float64]  # (F, 2) fixation centroids, for display
    heatmap: NDArray[np.float64] | None  # (H, W); None: built when asked (heatmap_or_build)
    onset_ms: NDArray[np.float64] | None = None  # (F,) fixation onsets from the image onset
    duration_ms: NDArray[np.float64] | None = None  # (F,) fixation durations (AOI statistics)
    weights: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    """``(N,)`` per-point heatmap weights (fixation durations, ms); ``None``: equal."""
    kernel_px: tuple[float, float] | None = None
    """``(c, radius)`` of the heatmap kernel in image px; for an elliptical kernel
    (:attr:`kernel_xy`) the circle of the same area (``√(c_x c_y)``, ``√(r_x r_y)``), a
    summary only: the heatmap is built with the ellipse."""
    image_hw: tuple[int, int] | None = None
    """The image's ``(H, W)`` px."""
    kernel_xy: KernelXY | None = None
    """``(c_x, c_y, r_x, r_y)`` in image px when the trial's kernel is an ellipse there
    (non-square screen pixels, an image scaled differently in x and y); ``None``: the
    circle :attr:`kernel_px`."""

    def kernel(self) -> HeatmapKernel:
        """The heatmap kernel in image px (an ellipse when :attr:`kernel_xy` is set)."""
        if self.kernel_px is None:
            raise AnalysisError(f"{self.annotator}: no heatmap kernel")
        return kernel_of(self.kernel_px, self.kernel_xy)

    def heatmap_or_build(self) -> NDArray[np.float64]:
        """The heatmap ``(H, W)``: the kept one, else built from the points, weights and kernel."""
        if self.heatmap is not None:
            return self.heatmap
        if self.kernel_px is None or self.image_hw is None:
            raise AnalysisError(f"{self.annotator}: no heatmap kept and none can be built")
        # the circle's own fixation_heatmap call (bit for bit), or the ellipse
        return self.kernel().heatmap(self.points, self.image_hw, self.weights)

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The gaze as named arrays (an on-disk cache's entry), without the heatmap;
        :meth:`from_arrays` gives it back."""
        empty = np.zeros(0)
        return {
            "points": self.points, "fix_xy": self.fixations,
            "onset_ms": empty if self.onset_ms is None else self.onset_ms,
            "duration_ms": empty if self.duration_ms is None else self.duration_ms,
            "weights": empty if self.weights is None else self.weights,
            "weighted": np.array([float(self.weights is not None)]),
            "kernel": np.array(self.kernel_px if self.kernel_px is not None else (np.nan, np.nan)),
            "kernel_xy": np.array(self.kernel_xy if self.kernel_xy is not None else ()),
            "image_hw": np.array(self.image_hw if self.image_hw is not None else (0, 0)),
        }  # fmt: skip

    @classmethod
    def from_arrays(
        cls, annotator: str, session_id: int, label: str | None, arrays: dict[str, NDArray[Any]]
    ) -> AnnotatorGaze:
        """The gaze of :meth:`arrays` (heatmap built when asked for); arrays without
        ``kernel_xy`` (written before kernels could be ellipses) give the circle."""
        c, radius = (float(v) for v in arrays["kernel"])
        h, w = (int(v) for v in arrays["image_hw"])
        xy = arrays.get("kernel_xy")
        kxy: KernelXY | None = None
        if xy is not None and np.size(xy) == 4:
            cx, cy, rx, ry = (float(v) for v in np.ravel(xy))
            kxy = (cx, cy, rx, ry)
        return cls(
            annotator, session_id, label, arrays["points"], arrays["fix_xy"], None,
            arrays["onset_ms"], arrays["duration_ms"],
            weights=arrays["weights"] if arrays["weighted"][0] else None,
            kernel_px=(c, radius), image_hw=(h, w), kernel_xy=kxy,
        )  # fmt: skip


@dataclass
class ImageAnalysis:
    """Everything known about one image: the image, each annotator's gaze, the model's view."""

    image_id: str
    true_class: str | None
    image: NDArray[np.uint8]
    regions: NDArray[np.float32] | None
    humans: dict[str, AnnotatorGaze]
    predicted: str = ""
    relevance: NDArray[np.float32] | None = None  # (S, S) model-input resolution
    model_points: NDArray[np.float64] | None = None  # (n, 2) image px
    model_heatmap: NDArray[np.float64] | None = None  # (H, W)
    rows: list[dict[str, Any]] = field(default_factory=list)
    model_hit: bool | None = None  # pointing game on the diagnostic regions
    kernel_px: tuple[float, float] = (0.0, 0.0)  # (c, radius) of the heatmap kernel in image px
    kernel_xy: KernelXY | None = None
    """``(c_x, c_y, r_x, r_y)`` image px when the image's kernel is an ellipse (then
    :attr:`kernel_px` is the circle of the same area); the model heatmap is built with it."""

    @property
    def disagreement(self) -> bool:
        """Annotators gave different labels (or one differs from the dataset label)."""
        given = {g.label for g in self.humans.values() if g.label is not None}
        if self.true_class is not None and given:
            given.add(self.true_class)
        return len(given) > 1

    @property
    def shape(self) -> tuple[int, int]:
        """The image's ``(H, W)`` px."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    def add(self, gaze: AnnotatorGaze) -> None:
        """Add (or replace) an annotator's gaze; the image's kernel (the model heatmap's)
        becomes its kernel. Each annotator's own heatmap keeps its trial's kernel, so
        trials shown on different screens or rectangles are each built with their own."""
        self.humans[gaze.annotator] = gaze
        if gaze.kernel_px is not None:
            self.kernel_px = gaze.kernel_px
            self.kernel_xy = gaze.kernel_xy

    def kernel(self) -> HeatmapKernel:
        """The image's heatmap kernel in image px (the model heatmap's)."""
        return kernel_of(self.kernel_px, self.kernel_xy)

    def model_heatmap_or_build(self) -> NDArray[np.float64] | None:
        """The model heatmap ``(H, W)``: the kept one, else built from the model points with
        the image's kernel; ``None`` without a model."""
        if self.model_heatmap is not None:
            return self.model_heatmap
        if self.model_points is None:
            return None
        return self.kernel().heatmap(self.model_points, self.shape)  # circle or ellipse


def class_name(index: int | None) -> str | None:
    """The class name of a class index into :data:`gazelab.CLASSES` (``None``: unknown)."""
    return CLASSES[index] if index is not None and 0 <= index < len(CLASSES) else None


def predicted_class(probs: NDArray[Any]) -> str:
    """The class a model's output ``(classes,)`` predicts; ``""`` for a model of other classes."""
    return CLASSES[int(np.argmax(probs))] if len(probs) == len(CLASSES) else ""


def model_n(counts: list[int]) -> tuple[float, int]:
    """The ``n`` of the model heatmap: the mean number of fixation points per (annotator,
    image) over ``counts`` (one count per annotator's trial on an image), and that mean
    rounded (at least 1); an :class:`AnalysisError` when there is no fixation at all."""
    if not counts or sum(counts) == 0:
        raise AnalysisError("no fixation in any trial: check the tracker and fixation settings")
    mean = float(np.mean(counts))
    return mean, max(1, int(round(mean)))


def annotator_gaze(
    trial: TrialGaze,
    annotator: str,
    session_id: int,
    label: str | None,
    point_source: str = "events",
    *,
    keep_map: bool = True,
) -> AnnotatorGaze:
    """One trial's gaze in image pixels (see the module docstring); ``keep_map`` builds the
    heatmap now and keeps it, otherwise it is built when asked for. The kernel is the
    trial's own (:meth:`~gazelab.analysis.human.TrialGaze.image_kernel`): a circle as
    ``kernel_px``, an ellipse as ``kernel_xy`` (with its equal-area circle as ``kernel_px``)."""
    kernel = trial.image_kernel()
    circle = kernel.area_circle()  # the kernel itself when circular
    kernel_xy = None
    if not kernel.circular:
        (cx, cy), (rx, ry) = kernel.c_xy, kernel.radius_xy
        kernel_xy = (float(cx), float(cy), float(rx), float(ry))
    h, w = trial.layout.image_shape
    onsets = np.asarray(trial.fixations["onset_ms"], dtype=np.float64) - trial.image_onset_ms
    g = AnnotatorGaze(
        annotator,
        session_id,
        label,
        trial.points(point_source, "image"),
        trial.points("events", "image"),
        None,
        onsets,
        np.asarray(trial.fixations["duration_ms"], dtype=np.float64),
        weights=trial.weights(point_source),
        kernel_px=(float(circle.c), float(circle.radius)),
        image_hw=(int(h), int(w)),
        kernel_xy=kernel_xy,
    )
    return replace(g, heatmap=g.heatmap_or_build()) if keep_map else g


def fixation_map(points: NDArray[np.float64], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Binary ``(H, W)`` map of the pixels that hold a fixation point (points ``(N, 2)``
    image px; those outside the image are dropped). Read-only: scoring keeps its fixated
    pixels' indices while it lives (:func:`~gazelab.analysis.metrics.prepared.fixated_indices`)."""
    h, w = shape
    out = np.zeros(shape, dtype=bool)
    if len(points):
        xi = np.floor(points[:, 0]).astype(int)
        yi = np.floor(points[:, 1]).astype(int)
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        out[yi[ok], xi[ok]] = True
    out.flags.writeable = False
    return out


def score_maps(
    human: NDArray[np.float64], other: NDArray[np.float64], human_points: NDArray[np.float64]
) -> dict[str, float]:
    """Every metric of ``other`` against ``human``; NaN where a metric is undefined (an empty
    map has no mass for SIM/KL; no fixation inside the image leaves NSS/AUC undefined).
    The numbers of :func:`score_image`, which prepares each map once for many pairs."""
    fixated = fixation_map(human_points, (int(human.shape[0]), int(human.shape[1])))
    return map_scores(PreparedMap(human), PreparedMap(other), fixated)


def pointing_hit(
    relevance: NDArray[Any], regions: NDArray[np.float32] | None, image_hw: tuple[int, int]
) -> bool | None:
    """The pointing game: is the model's most relevant pixel (``relevance`` ``(S, S)`` at
    model-input resolution, mapped to the image ``(H, W)``) inside a diagnostic region
    (``regions`` ``(H, W)`` > 0)? ``None`` without regions."""
    from gazelab.gaze.geometry import model_input_to_image

    if regions is None:
        return None
    size = (int(relevance.shape[0]), int(relevance.shape[1]))
    ry, rx = np.unravel_index(int(np.argmax(relevance)), size)
    px = model_input_to_image([[rx, ry]], size, image_hw)[0]
    yy = min(int(px[1]), image_hw[0] - 1)
    xx = min(int(px[0]), image_hw[1] - 1)
    return bool(regions[yy, xx] > 0)


HUMAN_PAIRS = ("all", "others")
"""How human-vs-human rows pair annotators: every ordered pair, or each annotator against
the pooled map of the others (``[analysis] human_pairs``)."""

OTHERS = "others"
"""The ``reference`` of a row scored against the pooled map of the other annotators."""


def check_human_pairs(human_pairs: str) -> None:
    """A :class:`ValueError` naming the choices unless ``human_pairs`` is one of them."""
    if human_pairs not in HUMAN_PAIRS:
        raise ValueError(f"human_pairs {human_pairs!r}: choose one of {', '.join(HUMAN_PAIRS)}")


def leave_one_out_sums(maps: Sequence[NDArray[np.float64]]) -> Iterator[NDArray[np.float64]]:
    """For each of an image's human maps ``(H, W)`` in order, the sum of all the *other*
    maps (a new array): the pooled map of the other observers.

    Each map is built with its points' duration weights (when ``heatmap.duration_weighting``
    is on), so the sum is the duration-weighted map of all the other observers' fixations
    pooled: the leave-one-out inter-observer map of saliency benchmarks (Judd, Durand &
    Torralba 2012, "A benchmark of computational models of saliency to predict human
    fixations", MIT-CSAIL-TR-2012-001). Summed as the maps before *k* plus the maps after
    *k* (running prefix and suffix sums: about 3 additions per map instead of A - 1; only
    non-negative numbers are added, so every pixel is its sum to a few ulp, tails included,
    and a pixel only one other observer looked at is that observer's value exactly). One
    map alone: zeros."""
    n = len(maps)
    if n == 0:
        return
    suffix: list[NDArray[np.float64] | None] = [None] * (n + 1)
    for k in range(n - 1, 0, -1):  # suffix[k] = maps[k] + maps[k+1] + ... (k >= 1)
        nxt = suffix[k + 1]
        suffix[k] = np.array(maps[k], dtype=np.float64) if nxt is None else np.add(maps[k], nxt)
    prefix: NDArray[np.float64] | None = None
    for k in range(n):
        after = suffix[k + 1]
        suffix[k + 1] = None  # let it go once used
        if prefix is None:
            yield after if after is not None else np.zeros_like(maps[k], dtype=np.float64)
        elif after is None:
            yield prefix.copy()
        else:
            yield np.add(prefix, after)
        prefix = np.array(maps[k], dtype=np.float64) if prefix is None else np.add(prefix, maps[k])


def leave_one_out_stream(
    build: Callable[[int], NDArray[np.float64]],
    n: int,
    need: Sequence[int],
    *,
    total: bool = False,
    block: int = 4,
    with_maps: bool = False,
) -> Iterator[tuple[int | None, NDArray[np.float64] | None, NDArray[np.float64]]]:
    """The pooled maps of the n maps ``build(k)`` ``(H, W)`` at the indices ``need``
    (rising) only, one at a time: ``(k, map k or None, the sum of every other map)``, the
    floats of :func:`leave_one_out_sums`; with ``total``, then ``(None, None, the sum of
    all n maps)``, the floats of :func:`pooled_total`. ``with_maps`` also gives map k (the
    one built for the prefix; else ``None``).

    Few maps are in memory: none is held (each is built when a sum needs it: two or three
    times), and of the suffix sums the wanted indices need only every ``block``-th is kept
    from the first pass (right to left); the others are summed again from it, block by
    block, as the prefix reaches them (the same additions in the same order: the same
    floats). So at most about ``len(need) / block + block + 2`` maps are held: at 20
    annotators about 9 instead of 39 (20 maps and 19 suffix sums; 55 MB less at
    400 × 600 px)."""
    block = max(1, int(block))
    need = list(need)
    groups = [need[g : g + block] for g in range(0, len(need), block)]
    tops = {g[-1] + 1 for g in groups}  # suffix[top] kept for each group: its last + 1

    def suffix_down(stop: int, start: int, run: NDArray[np.float64] | None,
                    keep: set[int]) -> dict[int, NDArray[np.float64]]:  # fmt: skip
        """suffix[k] = map k + suffix[k + 1] for k = stop - 1 down to start, from
        suffix[stop] = ``run`` (``None`` past the last map); those at ``keep``."""
        out: dict[int, NDArray[np.float64]] = {}
        for k in range(stop - 1, start - 1, -1):
            m = np.asarray(build(k), dtype=np.float64)
            run = np.array(m, dtype=np.float64) if run is None else np.add(m, run)
            if k in keep:
                out[k] = run  # a new array at every step
        return out

    prefix: NDArray[np.float64] | None = None  # maps 0 .. at - 1 summed

    def add(m: NDArray[np.float64]) -> None:
        nonlocal prefix
        if prefix is None:
            prefix = np.array(m, dtype=np.float64)
        else:
            np.add(prefix, m, out=prefix)

    # suffix[top] of every group, in one pass right to left down to the first wanted + 1
    kept = suffix_down(n, need[0] + 1, None, tops) if need else {}
    at = 0
    for g in groups:
        top = g[-1] + 1
        above = kept.pop(top, None)  # None: the group ends at the last map
        sums = suffix_down(top, g[0] + 1, above, {k + 1 for k in g})
        if above is not None:
            sums[top] = above
        for k in g:
            for j in range(at, k):
                add(np.asarray(build(j), dtype=np.float64))
            at = max(at, k)
            m = np.asarray(build(k), dtype=np.float64) if with_maps else None
            a = sums.pop(k + 1, None)
            if prefix is None:
                pooled = a if a is not None else np.zeros_like(build(k) if m is None else m)
            else:
                pooled = prefix.copy() if a is None else np.add(prefix, a)
            del a
            yield k, m, pooled
            del pooled
            if m is not None:  # map k, built already: into the prefix now
                add(m)
                at = k + 1
            del m
        del sums, above
    if total:
        for j in range(at, n):
            add(np.asarray(build(j), dtype=np.float64))
        if prefix is not None:
            yield None, None, prefix


def leave_one_out_built(
    build: Callable[[int], NDArray[np.float64]], n: int, block: int = 5
) -> Iterator[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """For k = 0 … n − 1: (map k, the sum of every other map), the floats of
    :func:`leave_one_out_sums` on the n maps ``build(k)`` ``(H, W)``, with few maps in
    memory (:func:`leave_one_out_stream` of every index)."""
    for _, m, pooled in leave_one_out_stream(build, n, range(n), block=block, with_maps=True):
        assert m is not None
        yield m, pooled


def pooled_total(maps: Iterable[NDArray[np.float64]]) -> NDArray[np.float64]:
    """The sum ``(H, W)`` of maps (a new array), in the given order."""
    it = iter(maps)
    total = np.array(next(it), dtype=np.float64, copy=True)
    for m in it:
        np.add(total, m, out=total)
    return total


def set_model_view(
    im: ImageAnalysis, relevance: NDArray[np.float32], n_points: int, predicted: str
) -> NDArray[np.float64]:
    """The model's side of ``im`` but its heatmap: the predicted class, the relevance map,
    the ``n_points`` most relevant pixels (in image px, returned) and the pointing game's
    hit (:func:`score_image`; a compare that reads an image's rows back sets these alone)."""
    from gazelab.analysis.saliency import model_points

    im.predicted = predicted
    im.relevance = relevance
    points: NDArray[np.float64] = model_points(relevance, n_points, im.shape)
    im.model_points = points
    im.model_hit = pointing_hit(relevance, im.regions, im.shape)
    return points


def score_image(
    im: ImageAnalysis,
    relevance: NDArray[np.float32] | None = None,
    n_points: int = 0,
    *,
    predicted: str = "",
    keep_maps: bool = True,
    orders: OrderStore | None = None,
    human_pairs: str = "all",
) -> ImageAnalysis:
    """Score one image (see the module docstring); fills ``im`` and returns it.

    ``relevance``: the model's relevance map ``(S, S)`` at model-input resolution, or
    ``None`` (no model: human-vs-human rows only); ``n_points``: the ``n`` most relevant
    pixels that make the model heatmap; ``predicted``: the model's class. ``keep_maps``:
    keep the human and model heatmaps in ``im`` (else they are built for scoring and let
    go). ``orders``: where each prepared map's sort is kept between runs (the saliency
    cache; the rows are the same with or without). ``human_pairs``: ``all`` scores *a*
    against every other annotator *b* (``reference`` *b*, A(A-1) rows per image);
    ``others`` scores *a* against the pooled map of all the other annotators of the image
    (:func:`leave_one_out_sums`; ``reference`` ``others``, A rows per image). Rows are appended
    to ``im.rows`` with :data:`ROW_COLUMNS`.
    """
    from gazelab.analysis.saliency import model_heatmap

    check_human_pairs(human_pairs)
    shape = im.shape
    model_map = None
    if relevance is not None:
        points = set_model_view(im, relevance, n_points, predicted)
        c, radius = im.kernel_px
        if im.kernel_xy is None:
            model_map = model_heatmap(relevance, n_points, shape, c, radius)
        else:  # the image's elliptical kernel, on the same points
            model_map = im.kernel().heatmap(points, shape)
        im.model_heatmap = model_map if keep_maps else None
    # Each map is prepared once (ranks, norms, sorted values) and scored against every
    # other: rows grow as annotators², the per-map work does not.
    share = human_pairs != OTHERS
    # ``others`` without kept maps: each map is built when its sums and its rows need it
    # (twice) and let go, instead of all of the image's maps held beside its suffix sums
    stream = not share and not keep_maps
    maps = {} if stream else {a: g.heatmap_or_build() for a, g in im.humans.items()}
    if keep_maps:
        im.humans = {a: replace(g, heatmap=maps[a]) for a, g in im.humans.items()}
    # with ``all`` every annotator's prepared map serves the others' rows: all are kept for
    # the image; with ``others`` each is prepared for its own two rows and let go (A
    # prepared maps of 6 MB at 240 000 pixels would otherwise stay for the image)
    prepared = {a: PreparedMap(m, orders) for a, m in maps.items()} if share else {}
    model_prepared = None if model_map is None else PreparedMap(model_map, orders)
    names = list(im.humans)
    pooled: Iterator[tuple[NDArray[np.float64], NDArray[np.float64]]] | None = None
    if not share and len(names) > 1:  # (map, pooled map of the others), in the maps' order
        # the maps built when a sum needs them, or read from the image's (kept) maps: either
        # way only every 5th suffix sum is held, not all A - 1 beside the A maps
        pooled = leave_one_out_built(
            (lambda k: im.humans[names[k]].heatmap_or_build())
            if stream
            else (lambda k: maps[names[k]]),
            len(names),
        )
    for a, g in im.humans.items():
        base = {"image_id": im.image_id, "class": im.true_class, "annotator": a}
        fixated = fixation_map(g.points, shape)
        own, others = next(pooled) if pooled is not None else (maps.get(a), None)
        if share:
            ref = prepared[a]
        else:
            ref = PreparedMap(g.heatmap_or_build() if own is None else own, orders)
        del own
        if model_prepared is not None:
            m = map_scores(ref, model_prepared, fixated)
            im.rows.append({**base, "reference": "model", "kind": "model", "label": g.label, **m})
        if others is not None:
            # a pooled map is scored once: its sort is not kept in the cache (A files of
            # the map's size per image, never read again unless the study is rerun)
            m = map_scores(ref, PreparedMap(others), fixated)
            del others
            im.rows.append({**base, "reference": OTHERS, "kind": "human", "label": g.label, **m})
            continue
        for b in im.humans:
            if b != a:
                m = map_scores(ref, prepared[b], fixated)
                im.rows.append({**base, "reference": b, "kind": "human", "label": g.label, **m})
    return im

"""Baseline rows, scored exactly as the observed pairs: for a whole comparison
(:func:`baseline_rows`), or one image at a time as the viewer shows it
(:func:`partner_indices`, :func:`image_baseline_rows`).
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gazelab.analysis.baselines.maps import (
    CENTRES,
    centre_gaussian,
    keep_top_fraction,
)
from gazelab.analysis.metrics import PreparedMap, map_scores
from gazelab.analysis.metrics.kernels import add_unit_mass
from gazelab.analysis.metrics.prepared import OrderStore

if TYPE_CHECKING:
    from gazelab.analysis.compare import Comparison


BASELINES = ("shuffled", "centre")
"""Baseline names, in report order."""

WINDOW_MB = 48
"""The most the baselines' windows of pooled maps (``human_pairs = "others"``) hold, MiB,
all scoring threads together (each an equal share; the kept sorts of the pooled maps
drawn more than once take up to a quarter more): the pooled maps a thread keeps between
their draws (:class:`PooledWindow`), so the memory does not grow with the annotators of
an image or the references an image gets. A map the window cannot keep is summed again
when it is drawn (about 20 map builds and sums at 20 annotators)."""


def _mean_scores(scores: list[dict[str, float]], metrics: Sequence[str]) -> dict[str, float]:
    """Each metric's mean over a baseline's draws, leaving out non-finite values (NaN where
    none is finite, or there are no draws)."""
    out = {}
    for m in metrics:
        v = np.array([s.get(m, math.nan) for s in scores], dtype=np.float64)
        v = v[np.isfinite(v)]
        out[m] = float(v.mean()) if v.size else math.nan
    return out


class MemoryOrders:
    """An in-memory :class:`~gazelab.analysis.metrics.prepared.OrderStore` of at most
    ``capacity`` sorts and, with ``max_bytes``, at most that many bytes of them, the least
    recently used let go first: a pooled map of a partner image is sorted the first time
    it is prepared and its sort is read back (checked, as any stored sort) for the other
    images that draw the same partner, instead of sorting it again. Sorts are ``int32``
    (a quarter MB for 240 000 pixels)."""

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        self.capacity = max(1, int(capacity))
        self.max_bytes = max_bytes
        self._orders: OrderedDict[str, NDArray[Any]] = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    def get_order(self, key: str) -> NDArray[Any] | None:
        got = self._orders.get(key)
        if got is None:
            self.misses += 1
            return None
        self._orders.move_to_end(key)
        self.hits += 1
        return got

    def put_order(self, key: str, order: NDArray[Any]) -> None:
        if self.max_bytes is not None and order.nbytes > self.max_bytes:
            return  # larger than the whole budget: not kept
        old = self._orders.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._orders[key] = order
        self.nbytes += order.nbytes
        while len(self._orders) > self.capacity or (
            self.max_bytes is not None and self.nbytes > self.max_bytes
        ):
            self.nbytes -= self._orders.popitem(last=False)[1].nbytes


Key = tuple[int, "str | None"]
"""A pooled map of the baselines' window: (partner image, the annotator left out), or
(partner image, ``None``) for the pooled map of all of the partner's annotators."""


class PooledWindow:
    """The dense pooled maps of partner images that a scoring thread of
    :func:`baseline_rows` holds between their draws, at most ``max_bytes`` of them.

    The draws of a thread's run are known before it starts: ``uses`` gives, for each pooled
    map, the steps (draw numbers, rising) at which it is scored. A map offered to the
    window (:meth:`offer`, as its partner's sums produce it) is kept while the bytes allow;
    past them the maps whose next draw is the farthest are let go first (Belady's rule,
    the fewest maps made again), and a map whose next draw is farther than every held
    one's is not kept. :meth:`take` gives the map of a draw: the held one, else ``make()``
    makes it again (the same floats: the same sums in the same order), and lets it go
    after its last draw. So the window's bytes do not grow with the annotators an image
    has or with how many references an image gets (a study of few images and many
    annotators holds many pooled maps of each partner at once), only the time to make a
    map again does.

    ``peak`` is the most bytes held at once; ``made_again`` how many draws made their map
    again."""

    def __init__(self, max_bytes: int, uses: dict[Key, deque[int]]) -> None:
        self.max_bytes = int(max_bytes)
        self.uses = uses
        self.maps: dict[Key, NDArray[np.float64]] = {}
        self.nbytes = self.peak = self.made_again = 0

    def next_use(self, key: Key) -> float:
        """The step of the map's next draw; infinity when none is left."""
        q = self.uses.get(key)
        return q[0] if q else math.inf

    def wants(self, key: Key) -> bool:
        """Whether the map has a draw left and is not held."""
        return key not in self.maps and bool(self.uses.get(key))

    def _drop(self, key: Key) -> None:
        m = self.maps.pop(key, None)
        if m is not None:
            self.nbytes -= m.nbytes

    def offer(self, key: Key, m: NDArray[np.float64]) -> None:
        """Keep ``m`` for its coming draws if the budget allows, letting go of held maps
        whose next draw is farther than its (see the class docstring)."""
        nxt = self.next_use(key)
        if key in self.maps or nxt == math.inf or m.nbytes > self.max_bytes:
            return
        while self.nbytes + m.nbytes > self.max_bytes:
            far = max(self.maps, key=self.next_use)
            if self.next_use(far) <= nxt:
                return  # every held map is drawn before this one: it is not kept
            self._drop(far)
        self.maps[key] = m
        self.nbytes += m.nbytes
        self.peak = max(self.peak, self.nbytes)

    def take(self, key: Key, make: Callable[[], NDArray[np.float64]]) -> NDArray[np.float64]:
        """The map of the next draw of ``key``: the held one, else made again by ``make()``
        (and offered for its later draws); let go after its last draw."""
        m = self.maps.get(key)
        if m is None:
            m = make()
            self.made_again += 1
        q = self.uses.get(key)
        if q:
            q.popleft()
        if q:
            self.offer(key, m)
        else:
            self._drop(key)
        return m


def bounded_references(
    annotators_of: Sequence[Sequence[str]], max_maps: int | None, seed: int = 0
) -> list[list[str]]:
    """The reference maps of the baselines under a bound: for each sampled image (in
    scoring order, its annotators in ``annotators_of``), the annotators whose maps are
    scored against the baselines, at most ``max_maps`` maps in all.

    Unbounded (``max_maps`` ``None`` or 0, or the images hold no more maps than that):
    every annotator of every image, unchanged. Bounded: the maps are dealt out one per
    image in turn (every image gets one before any gets a second; an image never more
    than it has; with fewer maps than images only the first ``max_maps`` images get one),
    and each image takes its annotators in a rotation of all annotators in a seeded
    random order (``numpy.random.default_rng([seed, 2])``): the annotators of the image
    used least so far, and among them the next in the rotation after the previous image's
    last; an annotator who did not look at an image keeps the turn for the next. Each
    annotator is a reference about equally often (exactly, ±1, when every annotator saw
    every image). An image's chosen annotators keep their order in ``annotators_of``."""
    chosen = [list(a) for a in annotators_of]
    if not max_maps or sum(len(a) for a in chosen) <= max_maps:
        return chosen
    quota = [0] * len(chosen)
    left = int(max_maps)
    while left > 0:
        for k, names in enumerate(chosen):
            if left > 0 and quota[k] < len(names):
                quota[k] += 1
                left -= 1
    everyone = sorted({a for names in chosen for a in names})
    order = np.random.default_rng([seed, 2]).permutation(len(everyone))
    place = {everyone[k]: p for p, k in enumerate(order)}  # each annotator's turn
    n, at = len(everyone), 0
    count = dict.fromkeys(everyone, 0)
    out: list[list[str]] = []
    for names, q in zip(chosen, quota, strict=True):
        # the least used annotators of the image first, then the next in the rotation
        ahead = sorted(names, key=lambda a: (count[a], (place[a] - at) % n))
        taken = set(ahead[:q])
        for a in taken:
            count[a] += 1
        if taken:
            at = (at + max((place[a] - at) % n for a in taken) + 1) % n
        out.append([a for a in names if a in taken])
    return out


def pooled_stream(
    build: Callable[[str], NDArray[np.float64]],
    names: Sequence[str],
    wanted: Iterable[str],
    *,
    total: bool = False,
    block: int = 4,
) -> Iterator[tuple[str | None, NDArray[np.float64]]]:
    """The pooled maps ``(H, W)`` of the annotators in ``wanted``, one at a time in the
    order of ``names`` (the image's annotators), as ``(name, map)``: for each, the sum of
    every other map of ``names``, the floats of
    :func:`~gazelab.analysis.scoring.leave_one_out_sums` (prefix + suffix sums); none for
    fewer than two annotators. With ``total``, then ``(None, the sum of all the maps)``,
    the floats of :func:`~gazelab.analysis.scoring.pooled_total`.

    ``build(name)`` gives an annotator's dense map; maps are built as the sums need them
    and let go, and only every ``block``-th suffix sum is held
    (:func:`~gazelab.analysis.scoring.leave_one_out_stream`): at most about
    ``len(wanted) / block + block + 2`` maps, however many annotators are wanted, and each
    map is built at most three times."""
    from gazelab.analysis.scoring import leave_one_out_stream

    n = len(names)
    want = set(wanted)
    need = [k for k, a in enumerate(names) if a in want] if n > 1 else []
    for k, _, pooled in leave_one_out_stream(
        lambda k: build(names[k]), n, need, total=total, block=block
    ):
        yield (None if k is None else names[k]), pooled
        del pooled


def pooled_of(
    build: Callable[[str], NDArray[np.float64]],
    names: Sequence[str],
    wanted: Iterable[str],
    *,
    total: bool = False,
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.float64] | None]:
    """The pooled maps of :func:`pooled_stream` by name, all at once, and with ``total``
    the sum of all the maps (else ``None``)."""
    pooled: dict[str, NDArray[np.float64]] = {}
    whole: NDArray[np.float64] | None = None
    for name, m in pooled_stream(build, names, wanted, total=total):
        if name is None:
            whole = m
        else:
            pooled[name] = m
    return pooled, whole


def _centre_and_model_rows(
    base: dict[str, Any],
    ref: PreparedMap,
    fixated: NDArray[np.bool_],
    centre: PreparedMap | None,
    models: Iterable[PreparedMap] | None,
    metrics: Sequence[str],
) -> list[dict[str, Any]]:
    """The rows of one reference map (annotator *a* on image *i*, prepared, and its fixated
    pixels) that do not depend on how humans are paired: the centre-bias row (NaN without a
    centre map) and, with ``models`` (the model maps of the partner images that have one,
    in partner order, each scored as it comes: they may be prepared one at a time; ``None``:
    the image has no model), the shuffled-model row, the mean over those draws. One
    function for ``all`` and ``others`` and the viewer's one image."""
    nan = dict.fromkeys(metrics, math.nan)
    rows = [{**base, "versus": "-", "reference": "centre", "baseline": "centre",
             "draws": 0 if centre is None else 1,
             **(nan if centre is None else map_scores(ref, centre, fixated))}]  # fmt: skip
    if models is not None:
        sc = [map_scores(ref, m, fixated) for m in models]
        rows.append({**base, "versus": "model", "reference": "model", "baseline": "shuffled",
                     "draws": len(sc), **_mean_scores(sc, metrics)})  # fmt: skip
    return rows


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
    max_maps: int | None = None,
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
    ``None``: every image. ``max_maps``: score at most this many reference maps (image,
    annotator) of those images (:func:`bounded_references`: each sampled image gets its
    turn, the annotators rotate in a seeded order), so a study of many annotators costs
    about as much as one of two; ``None`` or 0: every annotator of every sampled image
    (the rows are those of no bound whenever the images hold no more maps than that).
    ``orders``: where each prepared map's sort is kept between runs
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

    def map_pass(i: int, a: str) -> tuple[NDArray[np.float64], float]:
        """Annotator a's map of image i (built, then let go) and its mass (its dense sum)."""
        m = np.asarray(human_map(i, a), dtype=np.float64)
        return m, float(m.sum())

    # the maps are built on every core, a few maps ahead (not whole images: an image of 20
    # annotators is 20 maps); the sums are taken in image and annotator order on this
    # thread (the same floats as one loop)
    import os
    from concurrent.futures import Future, ThreadPoolExecutor

    every_map = [(i, a) for i in range(len(images)) for a in images[i].humans]
    n_workers = max(1, min(len(every_map), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        ahead: deque[Future[tuple[NDArray[np.float64], float]]] = deque()
        nxt = 0
        for i, a in every_map:
            while nxt < len(every_map) and len(ahead) < 2 * n_workers:
                ahead.append(pool.submit(map_pass, *every_map[nxt]))
                nxt += 1
            m, mass = ahead.popleft().result()
            masses[i, a] = mass
            total, first = None, False
            if centre == "mean":
                total = totals.get(shapes[i])
                if total is None:  # the first map of this size: the total is its unit mass
                    total = totals[shapes[i]] = np.empty(m.shape, dtype=np.float64)
                    first = True
                counts[shapes[i]] += 1
            # its pixels > 0 and, for the mean centre, total (+)= m / mass: one pass
            supports.append(add_unit_mass(total, m, mass, first=first) / m.size)
            del m
    frac = float(np.mean(supports)) if supports else 0.0

    def centre_map(
        i: int, own: Iterable[tuple[str, PreparedMap | NDArray[np.float64]]]
    ) -> PreparedMap | None:
        """The centre map of image i, whose human maps (prepared, or dense; all of them, in
        the image's annotator order, read only for the ``mean`` centre) are ``own``."""
        if centre == "gaussian":
            c = centre_gaussian(shapes[i], sigma_fraction)
        else:
            rest = counts[shapes[i]] - len(images[i].humans)
            if rest <= 0:
                return None
            # the sum of the own maps at unit mass, from their supports (or dense: a zero
            # pixel adds 0): the floats of sum(unit_mass(m) for m in own) (0 + x is x)
            mine = np.zeros(shapes[i][0] * shapes[i][1], dtype=np.float64)
            for a, m in own:
                if masses[i, a] > 0:
                    if isinstance(m, PreparedMap):
                        mine[m.support] += m.values / masses[i, a]
                    else:
                        mine += m.ravel() / masses[i, a]
            c = (totals[shapes[i]] - mine.reshape(shapes[i])) / rest
        return PreparedMap(keep_top_fraction(c, frac, copy=False), orders)

    has_model = [im.model_points is not None or im.model_heatmap is not None for im in images]

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
    # the reference maps of the sampled images, under the bound (images left without one
    # are not scored; they are still partners)
    refs_of = dict(zip(todo, bounded_references([list(images[i].humans) for i in todo],
                                                max_maps, seed), strict=True))  # fmt: skip
    todo = [i for i in todo if refs_of[i]]

    import threading

    lock, finished = threading.Lock(), [0]

    # how many draws use each pooled map, all runs together (partner, annotator; None: all
    # of the partner's maps pooled): the sort of one drawn more than once is kept in memory
    uses: dict[Key, int] = defaultdict(int)
    for i in todo:
        for j in partners_of[i]:
            for a in refs_of[i]:
                uses[j, a if a in images[j].humans else None] += 1

    def draw_key(a: str, j: int) -> Key | None:
        """The pooled map reference ``a`` is scored against on partner ``j``: every
        annotator of j but a (all of them when a did not look at j); ``None`` when there is
        none (nobody looked at j, or only a)."""
        humans = images[j].humans
        if a not in humans:
            return (j, None) if humans else None
        return (j, a) if len(humans) > 1 else None

    def pooled_maps(
        j: int, names: Sequence[str], total: bool
    ) -> Iterator[tuple[str | None, NDArray[np.float64]]]:
        """:func:`pooled_stream` of partner j's maps, built where not kept."""
        return pooled_stream(lambda a: human_map(j, a), list(images[j].humans), names, total=total)

    def make_again(key: Key) -> NDArray[np.float64]:
        j, a = key
        return next(pooled_maps(j, [] if a is None else [a], a is None))[1]

    # one contiguous run of the order per core (NumPy releases the GIL in its array work),
    # each with its share of the windows' budget
    workers = max(1, min(len(todo), os.cpu_count() or 1))
    window_bytes = int(WINDOW_MB * 2**20 / workers)

    def score_run_others(run: list[int]) -> list[tuple[int, list[dict[str, Any]]]]:
        """``score_run`` for ``human_pairs = "others"``. The run's draws are listed first,
        in the order they are scored. When a partner image is first drawn, the pooled maps
        of it that the run draws (:func:`pooled_stream`: a few maps held while they are
        summed) are offered one by one to a :class:`PooledWindow` of
        :data:`WINDOW_MB` (this thread's share), which keeps the ones drawn soonest and
        makes a map it did not keep again when its draw comes; a map is let go after its
        last draw. Each is prepared for every image that draws it; the sort of one that
        more than one draw uses (``uses``) is kept in memory (:class:`MemoryOrders`, a
        quarter of the thread's share on top) and read back by the next image that draws
        the same partner, instead of sorted again. The pooled sorts are not put in
        ``orders`` (the on-disk cache). The partners' model maps are prepared for each
        reference's draws, one at a time (:func:`partner_models`)."""
        # each pooled map's draws, numbered in the order the loop below scores them
        steps: dict[Key, deque[int]] = defaultdict(deque)
        t = 0
        for i in run:
            if len(images[i].humans) >= 2:
                for a in refs_of[i]:
                    for j in partners_of[i]:
                        if (key := draw_key(a, j)) is not None:
                            steps[key].append(t)
                            t += 1
        window = PooledWindow(window_bytes, steps)
        pooled_orders = MemoryOrders(2**31, window_bytes // 4)
        summed: set[int] = set()  # partners whose pooled maps were offered to the window

        def enter(j: int) -> None:
            """Partner j's pooled maps that this run draws, offered to the window."""
            if j in summed:
                return
            summed.add(j)
            names = [a for a in images[j].humans if window.wants((j, a))]
            for a, m in pooled_maps(j, names, window.wants((j, None))):
                window.offer((j, a), m)
                del m

        def partner_models(i: int) -> Iterator[PreparedMap]:
            """The model maps of image i's partners that have one, in partner order, each
            built and prepared when its draw comes and let go after it: a prepared map
            with its AUC counter is ~8 MB at 400 x 600 px, and the ``draws`` partners' of
            each thread were held for the images that draw them; preparing one again costs
            a few ms (its sort is read back from ``orders``)."""
            for j in partners_of[i]:
                mm = model_map(j) if has_model[j] else None
                if mm is not None:
                    yield PreparedMap(mm, orders)
                del mm

        done = []
        for i in run:
            im = images[i]
            for j in partners_of[i]:
                enter(j)
            # the centre map takes out every one of the image's maps (built one at a time)
            cm = centre_map(i, ((a, human_map(i, a)) for a in im.humans))
            rows: list[dict[str, Any]] = []
            for a in refs_of[i]:
                g = im.humans[a]
                # the image's own map, built again (its pooled maps, not its own, are what
                # the window keeps); prepared for its own rows only
                ref = PreparedMap(human_map(i, a), orders)
                fixated = fixation_map(g.points, shapes[i])
                base = {"image_id": im.image_id, "annotator": a}
                models = partner_models(i) if has_model[i] else None
                rows += _centre_and_model_rows(base, ref, fixated, cm, models, METRICS)
                if len(im.humans) < 2:
                    continue  # no observed human row to match
                # a against the pooled map of every annotator but a on each partner image j
                # (all of j's maps when a did not look at j; no draw when only a did)
                sc = []
                for j in partners_of[i]:
                    key = draw_key(a, j)
                    if key is None:
                        continue
                    pooled = window.take(key, partial(make_again, key))
                    kept = pooled_orders if uses[key] > 1 else None
                    sc.append(map_scores(ref, PreparedMap(pooled, kept), fixated))
                    del pooled
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
            for a in refs_of[i]:
                g = im.humans[a]
                ref = own[a]
                assert ref is not None
                fixated = fixation_map(g.points, shapes[i])
                base = {"image_id": im.image_id, "annotator": a}
                models = (
                    [m for o in others if (m := o.get("\0model")) is not None]
                    if has_model[i]
                    else None
                )
                rows += _centre_and_model_rows(base, ref, fixated, cm, models, METRICS)
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

    # rows come back in image order
    size = -(-len(todo) // workers) if todo else 1
    runs = [todo[k : k + size] for k in range(0, len(todo), size)]
    by_image: dict[int, list[dict[str, Any]]] = {}
    from gazelab.analysis.compare import blas_threads, release_free_memory

    with blas_threads(1), ThreadPoolExecutor(max_workers=workers) as pool:
        scorer = score_run_others if human_pairs == OTHERS else score_run
        for result in pool.map(scorer, runs):
            by_image.update(result)
    # the threads' maps are gone: their arenas' free pages back to the system, so what
    # follows (the report) does not add to the stage's peak (imported 20 x 120 study:
    # ~110 MB)
    release_free_memory()
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
    human_pairs: str = "all",
) -> list[dict[str, Any]]:
    """The rows of :func:`baseline_rows` for one image, as it scores them.

    ``image``: an :class:`~gazelab.analysis.compare.ImageAnalysis` (its human maps, fixation
    points and model map or points); ``partners``: the ImageAnalysis of its partner images
    (:func:`partner_indices`); ``centre_map``: the centre-bias map ``(H, W)`` already cut to
    one map's area (:func:`centre_for_image`), or ``None`` (NaN centre rows);
    ``human_pairs``: ``all`` (a shuffled row per ordered pair) or ``others`` (one per
    annotator, against the pooled map of the others on each partner), as
    :func:`baseline_rows` pairs them."""
    from gazelab.analysis.scoring import (
        METRICS,
        OTHERS,
        check_human_pairs,
        fixation_map,
        leave_one_out_sums,
        pooled_total,
    )

    check_human_pairs(human_pairs)

    def model_map(im: Any) -> NDArray[np.float64] | None:
        if im.model_heatmap is not None:
            return np.asarray(im.model_heatmap, dtype=np.float64)
        out: NDArray[np.float64] | None = im.model_heatmap_or_build()  # the image's kernel
        return out

    shape = (int(image.image.shape[0]), int(image.image.shape[1]))
    has_model = image.model_points is not None or image.model_heatmap is not None
    models: list[PreparedMap] | None = [] if has_model else None
    for p in partners:
        mm = model_map(p) if has_model else None
        if mm is not None and models is not None:
            models.append(PreparedMap(mm))
    cm = None if centre_map is None else PreparedMap(centre_map)
    own = {a: PreparedMap(g.heatmap_or_build()) for a, g in image.humans.items()}
    fixated_of = {a: fixation_map(g.points, shape) for a, g in image.humans.items()}
    # the human side of the shuffled rows: (annotator, reference) -> the draws' scores
    human: dict[tuple[str, str], list[dict[str, float]]] = {}
    if human_pairs == OTHERS:
        human = {(a, OTHERS): [] for a in image.humans} if len(image.humans) > 1 else {}
        for p in partners if human else []:
            maps = {b: np.asarray(g.heatmap_or_build(), dtype=np.float64)
                    for b, g in p.humans.items()}  # fmt: skip
            if not maps:
                continue
            if len(maps) > 1:
                for b, pooled in zip(maps, leave_one_out_sums(list(maps.values())), strict=True):
                    if b in own:
                        human[b, OTHERS].append(
                            map_scores(own[b], PreparedMap(pooled), fixated_of[b])
                        )
            rest = [a for a in image.humans if a not in maps]
            if rest:
                pooled_all = PreparedMap(pooled_total(maps.values()))
                for a in rest:
                    human[a, OTHERS].append(map_scores(own[a], pooled_all, fixated_of[a]))
    else:
        theirs = [{b: PreparedMap(g.heatmap_or_build()) for b, g in p.humans.items()}
                  for p in partners]  # fmt: skip
        for a in image.humans:
            for b in image.humans:
                if b != a:
                    human[a, b] = [map_scores(own[a], o[b], fixated_of[a])
                                   for o in theirs if b in o]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for a in image.humans:
        base = {"image_id": image.image_id, "annotator": a}
        rows += _centre_and_model_rows(base, own[a], fixated_of[a], cm, models, METRICS)
        for (x, b), sc in human.items():
            if x == a:
                rows.append({**base, "versus": "human", "reference": b, "baseline": "shuffled",
                             "draws": len(sc), **_mean_scores(sc, METRICS)})  # fmt: skip
    return rows

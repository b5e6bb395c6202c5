"""Human gaze vs model saliency over a project's sessions (docs/comparison.md).

:func:`analyse_project` reads the chosen sessions from the store, rebuilds their
images from the image source stored with each session, detects fixations and
builds every annotator's heatmap, explains the model's prediction for every
image (relevance maps cached on disk), turns the ``n`` most relevant pixels into
the model heatmap, and scores every annotator against the model and against
each other annotator, image by image, with the per-image scorer of
:mod:`gazelab.analysis.scoring` (the viewer's and ``gazelab heatmaps``' too; its types
``ImageAnalysis``, ``AnnotatorGaze``, ``METRICS`` and ``AnalysisError`` are importable from
here as well). :func:`summaries` gives the paper's Table 1 layout (mean ± sd per
annotator; per class).

Frames: fixations are mapped from the screen into *image* pixels through each trial's
placement (where the image really was: :mod:`gazelab.analysis.placement`) and both
heatmaps are built there with the heatmap kernel (docs/algorithms.md#heatmaps) divided by
the image's scale in x and in y (``HeatmapKernel.for_image``): a circle for ``annotate``'s
centred square (the stimulus-frame heatmap resampled to image resolution, without the
resampling), an ellipse for an image shown on non-square pixels or stretched. Each
annotator's map has its own trial's kernel; the model heatmap has the image's (its last
trial's). Model points are the centres of relevance-map pixels mapped to image pixels.

``n`` (docs/comparison.md) is the mean number of fixation points per (annotator, image)
over the chosen sessions, rounded; a point is a fixation *event* (centroid) or
every valid *sample* inside a fixation, per ``AnalysisSettings.point_source``.
Both are written into the report.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from gazelab import CLASSES
from gazelab.analysis.cache import (
    SaliencyCache,
    array_hash,
    cached_predictions,
    cached_relevance,
    decoded_image,
    image_result_key,
    is_rows,
    model_hash,
    result_key,
)
from gazelab.analysis.human import trial_gaze
from gazelab.analysis.metrics import cohen_kappa, label_agreement
from gazelab.analysis.scoring import METRICS as METRICS
from gazelab.analysis.scoring import (
    OTHERS,
    ROW_COLUMNS,
    annotator_gaze,
    class_name,
    kernel_dict,
    model_n,
    predicted_class,
    score_image,
    set_model_view,
)
from gazelab.analysis.scoring import PAPER_METRICS as PAPER_METRICS
from gazelab.analysis.scoring import AnalysisError as AnalysisError
from gazelab.analysis.scoring import AnnotatorGaze as AnnotatorGaze
from gazelab.analysis.scoring import ImageAnalysis as ImageAnalysis
from gazelab.analysis.scoring import score_maps as score_maps
from gazelab.annotation.session import SessionSetupError
from gazelab.annotation.sessions import quality_exclusions
from gazelab.annotation.store import SessionRecord, SessionStore
from gazelab.models.datasets.base import DatasetError, ImageSet
from gazelab.models.datasets.registry import open_image_set
from gazelab.settings import AnalysisSettings, QualitySettings, Settings

Progress = Callable[[str, int, int], None]  # (stage, done, total)

KEPT_MAPS_MB = 64
"""The most the kept heatmaps (``keep_maps``) may hold, MiB: fewer images keep theirs
when an image has many annotators (:func:`kept_images`); the report builds the others'
maps when it draws them."""

MMAP_THRESHOLD = 131072
"""glibc's mmap threshold (bytes) of :func:`lower_mmap_threshold`: the memory-saving
setting :func:`analyse_project` no longer uses (see :data:`ARENA_THRESHOLD`)."""


def lower_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Have glibc's malloc serve blocks of ``threshold`` bytes or more with their own
    ``mmap`` (``mallopt(M_MMAP_THRESHOLD)``), so a freed heatmap goes back to the system at
    once instead of staying in a thread's arena; glibc otherwise raises the threshold to
    the largest block freed (up to 32 MiB) and the scoring threads' arenas keep many maps'
    worth of freed blocks. Linux (glibc) only: elsewhere, or when it fails, nothing is
    changed and ``False`` is returned.

    The price is time: every map-sized block is then a fresh ``mmap`` whose pages fault in
    on first use. Measured on the imported 20 participants x 120 images study with
    ``--human-pairs others``: 718 s of CPU and a 1.52 GB peak with this threshold,
    290 s and 1.68 GB with :data:`ARENA_THRESHOLD`, which :func:`analyse_project` sets."""
    return set_malloc_thresholds(threshold)


ARENA_THRESHOLD = 32 * 2**20
"""glibc's mmap and trim thresholds (bytes) :func:`analyse_project` sets for every study:
a map-sized block comes from a thread's arena, where
a freed one is reused without fresh pages to fault in, and an arena gives memory back once
32 MiB are free at its top. (glibc's own dynamic threshold is no help here: it rises to the
size of the largest block freed, and a block of exactly that size is still ``mmap``-ed.)
They stay set for the rest of the process (``mallopt`` cannot hand glibc its dynamic
thresholds back): a long-lived process such as the viewer keeps up to 32 MiB free in each
arena after a compare."""


def set_malloc_thresholds(mmap_threshold: int, trim_threshold: int | None = None) -> bool:
    """glibc's ``mallopt(M_MMAP_THRESHOLD)`` and, when given, ``mallopt(M_TRIM_THRESHOLD)``
    (bytes; either turns glibc's dynamic thresholds off for the process). Linux (glibc)
    only: elsewhere, or when it fails, ``False``."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
        ok = bool(libc.mallopt(m_mmap_threshold, int(mmap_threshold)))
        if trim_threshold is not None:
            ok = bool(libc.mallopt(m_trim_threshold, int(trim_threshold))) and ok
        return ok
    except (OSError, AttributeError):
        return False


def release_free_memory() -> bool:
    """glibc's ``malloc_trim(0)``: every arena gives the free pages it holds back to the
    system. The model's threads (TensorFlow's own) free their working memory into their
    own arenas, where the scoring threads never reuse it; trimmed once the relevance maps
    are made, it no longer counts towards the peak. Linux (glibc) only: elsewhere, or
    when it fails, ``False``."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def kept_images(shapes_annotators: Sequence[tuple[tuple[int, int], int]], keep: int,
                max_mb: float = KEPT_MAPS_MB) -> int:  # fmt: skip
    """How many of the first images keep their heatmaps: at most ``keep``, and no more than
    fit in ``max_mb`` MiB, each image's maps being ``annotators + 1`` (the model's) float64
    maps of its ``(H, W)`` (``shapes_annotators``: per image in order)."""
    used = 0.0
    for k, ((h, w), annotators) in enumerate(shapes_annotators[:keep]):
        used += (annotators + 1) * h * w * 8 / 2**20
        if used > max_mb:
            return k
    return min(keep, len(shapes_annotators))


@dataclass
class Comparison:
    """The result of :func:`analyse_project`: per-image analyses and the settings used."""

    images: list[ImageAnalysis]
    annotators: list[str]
    sessions: list[int]
    analysis: AnalysisSettings
    n_points: int
    mean_points: float
    kernel_image_px: dict[str, float]
    """The first image's kernel in image px: ``c``, ``radius`` (for an ellipse the circle of
    the same area) and ``c_x``, ``c_y``, ``r_x``, ``r_y``."""
    model_name: str
    model_hash: str
    settings_toml: str
    computed_maps: int = 0
    excluded: list[dict[str, Any]] = field(default_factory=list)
    """Trials left out by the ``[quality]`` limits: session, annotator, trial, image, reason."""
    baselines: list[dict[str, Any]] = field(default_factory=list)
    """Shuffled-image and centre-bias scores of every observed pair
    (:func:`gazelab.analysis.baselines.baseline_rows`); empty when not computed."""
    baseline_settings: dict[str, Any] = field(default_factory=dict)
    """How :attr:`baselines` were made: draws, seed, centre map, the bounds (``max_images``,
    ``max_maps``) and the reference maps scored (``maps``, ``maps_by_annotator``)."""

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for im in self.images for r in im.rows]

    def frame(self) -> Any:
        """Per-image metric rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(ROW_COLUMNS))


def blas_threads(n: int) -> Any:
    """A context in which BLAS (NumPy's dot products) uses ``n`` threads (threadpoolctl);
    the thread pools of :func:`analyse_project` and the baselines run their workers in
    ``blas_threads(1)``."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


GAZE_FIELDS = ("time_ms", "local_s", "x", "y", "fix", "state", "valid")
"""The sample fields the gaze stage reads (fixation detectors, clock segments, data
quality): the per-eye, raw and pupil columns are left in the store, which halves the
time to read a study's samples."""


def annotator_keys(records: Sequence[SessionRecord]) -> dict[int, str]:
    """The annotator name of each session (by id), as reports and mask exports use it: the
    participant, or ``participant/s<id>`` for a participant with several of ``records``."""
    names = [r.participant for r in records]
    return {
        r.id: (r.participant if names.count(r.participant) == 1 else f"{r.participant}/s{r.id}")
        for r in records
    }


def analyse_project(
    store: SessionStore,
    model: Any,
    session_ids: Sequence[int] | None = None,
    *,
    analysis: AnalysisSettings | None = None,
    cache: SaliencyCache | None = None,
    progress: Progress | None = None,
    batch_size: int = 32,
    quality: QualitySettings | None = None,
    keep_maps: int | None = None,
    baseline_draws: int = 3,
    centre: str = "mean",
    baseline_images: int | None = 100,
) -> Comparison:
    """Analyse the sessions (default: all in the store) against ``model``; see module doc.

    ``quality`` limits leave out trials (data loss) and whole sessions (validation
    accuracy); see :func:`quality_exclusions`. Default: keep every trial.

    ``keep_maps``: keep the heatmaps (human and model) of only the first N images in
    order (those a report draws); the others are built for scoring and let go, so
    memory does not grow with the study (a 560 px map is 2.5 MB). ``None``: keep all.

    ``baseline_draws``: other images drawn per pair for the shuffled-image baseline, and
    ``centre`` (``mean`` | ``gaussian``) the centre-bias map (:mod:`.baselines`); 0 draws
    leaves both out. ``baseline_images``: the baselines are scored on at most this many
    images (a seeded sample; ``None``: all), which bounds their cost on large studies.

    ``analysis.baseline_maps``: the baselines score at most this many (image, annotator)
    reference maps of those images (:func:`~gazelab.analysis.baselines.bounded_references`;
    0: all); :attr:`Comparison.baseline_settings` records the bound and the maps scored.

    ``analysis.human_pairs``: ``all`` (every ordered pair of annotators) or ``others``
    (each annotator against the pooled maps of the others; the baselines pair the same
    way), see :func:`~gazelab.analysis.scoring.score_image`. The kept maps are bounded to
    :data:`KEPT_MAPS_MB` (:func:`kept_images`), and glibc's mmap and trim thresholds are raised
    (:data:`ARENA_THRESHOLD`) so that map-sized blocks are reused in the threads' arenas."""
    an = analysis or AnalysisSettings()
    records = store.sessions()
    if session_ids is not None:
        wanted = set(session_ids)
        missing = wanted - {r.id for r in records}
        if missing:
            raise AnalysisError(
                f"session(s) {sorted(missing)} not in {store.path}; "
                f"it holds {[r.id for r in records]}"
            )
        records = [r for r in records if r.id in wanted]
    if not records:
        raise AnalysisError(f"no sessions in {store.path}: record one with 'gazelab annotate'")
    key = annotator_keys(records)

    sources: dict[str, ImageSet] = {}
    id_sets: dict[str, set[str]] = {}
    for rec in records:
        if rec.image_source in sources:
            continue
        try:
            sources[rec.image_source] = open_image_set(rec.image_source)
        except (SessionSetupError, DatasetError) as exc:
            raise AnalysisError(
                f"session {rec.id} ({rec.participant}): its images cannot be rebuilt from "
                f"image source {rec.image_source!r}: {exc}"
            ) from exc
        id_sets[rec.image_source] = set(sources[rec.image_source].ids)
    # each image decoded once for all sessions of the same source (the image is kept with
    # its analysis anyway); a set of files by a thread per core (each call opens its own
    # file; PIL's decoder and the cache's writes release the GIL), others in this thread
    needed = list(dict.fromkeys(
        (rec.image_source, iid) for rec in records for iid in rec.stimulus_order
        if iid in id_sets[rec.image_source]
    ))  # fmt: skip
    from concurrent.futures import ThreadPoolExecutor

    def decode(w: tuple[str, str]) -> Any:
        return decoded_image(sources[w[0]], w[1], cache)

    files = [w for w in needed if getattr(sources[w[0]], "files", None) is not None]
    # the first in this thread: the decoders' modules are imported once, before the threads
    # (two threads importing a module for the first time at once can deadlock)
    decoded = {w: decode(w) for w in files[:1]}
    with ThreadPoolExecutor(max_workers=max(1, min(len(files), os.cpu_count() or 1))) as pool:
        decoded.update(zip(files[1:], pool.map(decode, files[1:]), strict=True))
    decoded.update((w, decode(w)) for w in needed if w not in decoded)
    images, first_settings, excluded = _gaze_stage(
        store, records, key, sources, decoded, an, quality, keep_maps, progress
    )
    mean_points, n = model_n([len(g.points) for im in images.values() for g in im.humans.values()])
    ordered = sorted(images.values(), key=lambda im: im.image_id)
    probs, rel, computed = _model_pass(
        model, [im.image for im in ordered], an.analyzer, cache, batch_size,
        (lambda d, t: progress("saliency", d, t)) if progress else None,
    )  # fmt: skip
    set_malloc_thresholds(ARENA_THRESHOLD, ARENA_THRESHOLD)
    release_free_memory()  # what the model's and the gaze stage's threads freed

    n_kept = (
        None
        if keep_maps is None
        else kept_images([(im.shape, len(im.humans)) for im in ordered], keep_maps)
    )

    # each image's result kept by its inputs: a warm run scores (and builds the maps of)
    # only the images whose maps are kept for the report, and those whose inputs changed.
    # With results kept the pairs' scores are not (each would cost a key of both maps and
    # a row on every cold run, for reruns the results already serve): the cache keeps the
    # maps' sorts only; without results (keep_results=False) it keeps the pairs' scores.
    keys: list[str | None] = [None] * len(ordered)
    orders = cache if cache is None or not cache.keep_results else _SortsOnly(cache)

    def score(i: int) -> None:
        im = ordered[i]
        keep = n_kept is None or i < n_kept
        pred = predicted_class(probs[i])
        key = None
        if cache is not None:
            key = keys[i] = image_result_key(im, rel[i], n, pred, an.human_pairs)
            # an image whose maps the report draws is scored (its maps built) either way
            if not keep and _read_image_result(
                im, cache.get_result(key), rel[i], n, pred, an.human_pairs
            ):
                return
        score_image(im, rel[i], n, predicted=pred, keep_maps=keep, orders=orders,
                    human_pairs=an.human_pairs)  # fmt: skip
        if cache is not None and key is not None:
            cache.put_result(key, _image_result(im))

    # Images are independent and NumPy releases the GIL in its array work (sorts, dot
    # products, element-wise passes): one thread per core, results in image order, each
    # worker's BLAS on one thread (workers × BLAS threads would spin against each other).
    workers = max(1, min(len(ordered), os.cpu_count() or 1))
    with blas_threads(1), ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(score, range(len(ordered)))):
            if progress:
                progress("metrics", done, len(ordered))
    if progress:
        progress("metrics", len(ordered), len(ordered))
    # what the scoring threads freed goes back to the system once, from every arena: the
    # report draws the kept maps on this thread, whose arena cannot reuse the free pages of
    # the workers' (at 20 annotators the report's peak starts ~50 MB lower); once here, not
    # after each image, which would hand back the pages the next image's maps reuse
    release_free_memory()
    ref = first_settings or Settings()
    comp = Comparison(
        images=ordered,
        annotators=[
            a
            for a in sorted(set(key.values()), key=list(key.values()).index)
            if any(a in im.humans for im in ordered)
        ],  # fully excluded: left out
        sessions=[r.id for r in records],
        analysis=an,
        n_points=n,
        mean_points=mean_points,
        kernel_image_px=kernel_dict(ordered[0].kernel_px, ordered[0].kernel_xy),
        model_name=str(model.name),
        model_hash=model_hash(model),
        settings_toml=ref.replace(analysis=an).to_toml(),
        computed_maps=computed,
        excluded=excluded,
    )
    if baseline_draws > 0:
        from gazelab.analysis.baselines import baseline_rows

        # the study's baseline rows kept by every image's inputs and the baselines' settings
        bkey = None
        if cache is not None and all(k is not None for k in keys):
            bkey = result_key("baselines", keys, comp.annotators, baseline_draws, centre,
                              baseline_images, an.human_pairs, an.baseline_maps or None)  # fmt: skip
        got = cache.get_result(bkey) if cache is not None and bkey is not None else None
        if _baseline_rows_ok(got, comp):
            comp.baselines = got
            if progress:
                progress("baselines", 1, 1)
        else:
            comp.baselines = baseline_rows(
                comp, draws=baseline_draws, seed=0, centre=centre, max_images=baseline_images,
                progress=(lambda d, t: progress("baselines", d, t)) if progress else None,
                orders=orders, human_pairs=an.human_pairs, max_maps=an.baseline_maps or None,
            )  # fmt: skip
            if cache is not None and bkey is not None:
                cache.put_result(bkey, comp.baselines)
        # the reference maps the baselines scored, per annotator (study order)
        used = {(r["image_id"], r["annotator"]) for r in comp.baselines}
        per = {a: sum(1 for _, b in used if b == a) for a in comp.annotators}
        comp.baseline_settings = {"draws": baseline_draws, "seed": 0, "centre": centre,
                                  "max_images": baseline_images, "max_maps": an.baseline_maps,
                                  "maps": len(used), "maps_by_annotator": per}  # fmt: skip
    if cache is not None:  # the pairs' scores committed; the derived data under its size cap
        cache.flush()
        cache.trim(an.cache_max_mb * 2**20)
    release_free_memory()  # (a warm run reads the baselines back: theirs never ran)
    return comp


def _gaze_stage(
    store: SessionStore,
    records: Sequence[SessionRecord],
    key: dict[int, str],
    sources: dict[str, ImageSet],
    decoded: dict[tuple[str, str], Any],
    an: AnalysisSettings,
    quality: QualitySettings | None,
    keep_maps: int | None,
    progress: Progress | None,
) -> tuple[dict[str, ImageAnalysis], Settings | None, list[dict[str, Any]]]:
    """Every session's trials read, their fixations detected and added to their image's
    analysis (:func:`analyse_project`'s gaze stage); returns (the images by id, the first
    session's settings, the trials the [quality] limits left out)."""
    images: dict[str, ImageAnalysis] = {}
    first_settings: Settings | None = None
    excluded: list[dict[str, Any]] = []
    for k, rec in enumerate(records):
        if progress:
            progress("gaze", k, len(records))
        src = sources[rec.image_source]
        s = Settings.from_toml(rec.settings_toml, source=f"session {rec.id}")
        first_settings = first_settings or s
        labels = store.final_labels(rec.id)
        pixels = {iid: decoded[rec.image_source, iid] for iid in rec.stimulus_order
                  if (rec.image_source, iid) in decoded}  # fmt: skip
        shapes = {iid: (int(a.shape[0]), int(a.shape[1])) for iid, a in pixels.items()}
        # the session's samples, read once: fixations, and data quality where none is stored
        samples = store.samples_by_trial(rec.id, phase="image", fields=GAZE_FIELDS)
        left_out = quality_exclusions(
            store, rec.id, s, quality or QualitySettings(), samples=samples
        )
        for tg in trial_gaze(store, rec.id, shapes, s, samples=samples):
            iid = tg.image_id
            if tg.trial_index in left_out:
                why = left_out[tg.trial_index]
                excluded.append({"session": rec.id, "annotator": key[rec.id],
                                 "trial_index": tg.trial_index, "image_id": iid, "reason": why})  # fmt: skip
                continue
            if iid not in images:
                cls = class_name(src.labels.get(iid))
                images[iid] = ImageAnalysis(iid, cls, pixels[iid], src.regions.get(iid), {})
            gaze = annotator_gaze(tg, key[rec.id], rec.id, labels.get(tg.trial_index),
                                  an.point_source, keep_map=keep_maps is None)  # fmt: skip
            images[iid].add(gaze)
        del samples
    if not images and excluded:
        raise AnalysisError(
            f"every trial with gaze in sessions {[r.id for r in records]} was left out by the "
            f"[quality] limits ({len(excluded)} trials; e.g. {excluded[0]['reason']}); "
            "loosen [quality] in the settings or record validations"
        )
    if not images:
        raise AnalysisError(
            f"sessions {[r.id for r in records]} have no gaze samples during image phases"
        )
    return images, first_settings, excluded


def _model_pass(
    model: Any,
    images: list[Any],
    analyzer: str,
    cache: SaliencyCache | None,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[Any, Any, int]:
    """The model's predictions and relevance maps of ``images`` (in their order) and how
    many maps were computed. Run in the calling thread after the gaze stage: a thread
    beside it was tried and taken out (two threads importing modules for the first time at
    once deadlocked in Python's import locks)."""
    from concurrent.futures import ThreadPoolExecutor

    from gazelab.models.architectures import to_model_input

    # the model input: each image resized on its own (PIL releases the GIL), a stretch of
    # the images per core, put back in order
    workers = max(1, min(len(images), os.cpu_count() or 1))
    step = -(-len(images) // workers)
    stretches = [images[k : k + step] for k in range(0, len(images), step)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        x = np.concatenate(
            list(pool.map(lambda imgs: to_model_input(imgs, model.input_shape[1:]), stretches))
        )
    keys = [array_hash(xi) for xi in x] if cache is not None else None
    probs = cached_predictions(model, x, cache, batch_size=batch_size, keys=keys)
    rel, computed = cached_relevance(
        model, x, analyzer, cache, batch_size=batch_size, progress=progress, keys=keys
    )
    return probs, rel, computed


class _SortsOnly:
    """A saliency cache as a store of the prepared maps' sorts only
    (:class:`~gazelab.analysis.metrics.prepared.OrderStore`, no pairs' scores)."""

    def __init__(self, cache: SaliencyCache) -> None:
        self.get_order = cache.get_order
        self.put_order = cache.put_order
        self.min_sort_values = cache.min_sort_values


def _image_result(im: ImageAnalysis) -> dict[str, Any]:
    """What :func:`~gazelab.analysis.scoring.score_image` gave an image, as the cache keeps
    it: its rows (:func:`_read_image_result` reads them back)."""
    return {"rows": im.rows}


def _read_image_result(
    im: ImageAnalysis, value: Any, relevance: Any, n: int, predicted: str, human_pairs: str
) -> bool:
    """Fill ``im`` from a kept result as :func:`~gazelab.analysis.scoring.score_image`
    without kept maps would: its rows, and the model's class, relevance, points and
    pointing hit (the points and the hit taken again from the relevance map: a few
    microseconds, nothing read back to trust). ``False`` (``im`` untouched) unless the
    rows are this image's (:func:`_image_rows_ok`)."""
    if not isinstance(value, dict) or not _image_rows_ok(
        value.get("rows"), im, relevance, human_pairs
    ):
        return False
    im.rows = list(value["rows"])
    if relevance is not None:
        set_model_view(im, relevance, n, predicted)
    return True


def _is_float(v: Any) -> bool:
    return isinstance(v, float)


def _image_rows_ok(rows: Any, im: ImageAnalysis, relevance: Any, human_pairs: str) -> bool:
    """Whether kept rows are rows :func:`~gazelab.analysis.scoring.score_image` gives this
    image: :data:`ROW_COLUMNS` in order, the image's id and class, its annotators and
    their labels, float metrics, and as many as its annotators and pairing make."""
    if not is_rows(rows):
        return False
    a = len(im.humans)
    for r in rows:
        g = im.humans.get(r["annotator"]) if list(r) == list(ROW_COLUMNS) else None
        if (g is None or r["image_id"] != im.image_id or r["class"] != im.true_class
                or r["label"] != g.label or r["kind"] not in ("model", "human")
                or not isinstance(r["reference"], str)
                or not all(_is_float(r[m]) for m in METRICS)):  # fmt: skip
            return False
    models = sum(r["kind"] == "model" for r in rows)
    if human_pairs == OTHERS:  # each against the others pooled
        pairs = a if a > 1 else 0
    else:  # every ordered pair
        pairs = a * (a - 1)
    return models == (a if relevance is not None else 0) and len(rows) - models == pairs


BASELINE_KEYS = ("image_id", "annotator", "versus", "reference", "baseline", "draws")
"""The columns of a baseline row besides the metrics."""


def _baseline_rows_ok(rows: Any, comp: Comparison) -> TypeGuard[list[dict[str, Any]]]:
    """Whether kept baseline rows have a baseline row's columns, the study's images and
    annotators, a whole number of draws and float metrics."""
    if not is_rows(rows):
        return False
    ids, names = {im.image_id for im in comp.images}, set(comp.annotators)
    want = {*BASELINE_KEYS, *METRICS}
    return all(
        set(r) == want and r["image_id"] in ids and r["annotator"] in names
        and isinstance(r["draws"], int) and not isinstance(r["draws"], bool)
        and all(isinstance(r[k], str) for k in ("versus", "reference", "baseline"))
        and all(_is_float(r[m]) for m in METRICS)
        for r in rows
    )  # fmt: skip


# -- summaries -------------------------------------------------------------------------------
def summaries(comp: Comparison) -> dict[str, Any]:
    """Mean ± sd of every metric per annotator and per class (human vs model, human vs
    human), pointing game, label agreement and, where computed, every score against the
    shuffled-image and centre-bias baselines with the one-sentence layout note; plain
    Python values (JSON-ready)."""
    df = comp.frame()
    out: dict[str, Any] = {"by_annotator": [], "by_class": []}
    for group_col, dest in (("annotator", "by_annotator"), ("class", "by_class")):
        if df.empty:
            continue
        for (g, kind), sub in df.groupby([group_col, "kind"], sort=True, dropna=False):
            row: dict[str, Any] = {group_col: g, "versus": kind, "n": int(len(sub))}
            for m in METRICS:
                vals = sub[m].to_numpy(dtype=float)
                vals = vals[np.isfinite(vals)]
                row[f"{m}_mean"] = float(vals.mean()) if len(vals) else math.nan
                row[f"{m}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            out[dest].append(row)
    hits = [im.model_hit for im in comp.images if im.model_hit is not None]
    in_regions = []
    for im in comp.images:
        if im.regions is None:
            continue
        h, w = im.regions.shape
        for g in im.humans.values():
            p = g.fixations
            ok = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
            if ok.any():
                vals = im.regions[p[ok, 1].astype(int), p[ok, 0].astype(int)] > 0
                in_regions.append(float(vals.mean()))
    out["pointing_game"] = {
        "model_hit_rate": float(np.mean(hits)) if hits else None,
        "images": len(hits),
        "human_fixations_in_regions": float(np.mean(in_regions)) if in_regions else None,
    }
    out["labels"] = label_summary(comp)
    if comp.baselines:
        from gazelab.analysis.baselines import baseline_summary, layout_sentence

        out["baselines"] = baseline_summary(comp.rows, comp.baselines)
        out["baseline_settings"] = dict(comp.baseline_settings)
        out["layout_note"] = layout_sentence(out["baselines"])
    return out


def label_summary(comp: Comparison) -> dict[str, Any]:
    """Accuracy and confusion of each annotator (and the model) against the dataset labels;
    Cohen's κ between annotators on the images both labelled."""
    res: dict[str, Any] = {"annotators": {}, "kappa": []}
    for a in comp.annotators:
        pairs = [
            (im.true_class, im.humans[a].label)
            for im in comp.images
            if a in im.humans and im.humans[a].label is not None and im.true_class is not None
        ]
        if pairs:
            t, g = zip(*pairs, strict=True)
            res["annotators"][a] = {"n": len(pairs), **label_agreement(t, g, CLASSES)}
    model_pairs = [(im.true_class, im.predicted) for im in comp.images if im.true_class]
    if model_pairs and all(p for _, p in model_pairs):
        t, g = zip(*model_pairs, strict=True)
        res["model"] = {"n": len(model_pairs), **label_agreement(t, g, CLASSES)}
    for a, b in itertools.combinations(comp.annotators, 2):
        both = [
            (im.humans[a].label, im.humans[b].label)
            for im in comp.images
            if a in im.humans
            and b in im.humans
            and im.humans[a].label is not None
            and im.humans[b].label is not None
        ]
        if both:
            la, lb = zip(*both, strict=True)
            res["kappa"].append({"a": a, "b": b, "n": len(both), "kappa": cohen_kappa(la, lb)})
    return res

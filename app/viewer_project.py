"""The viewer's project, without Qt: an index of a store's images opened in milliseconds,
and each image's gaze (fixations, scanpaths, heatmaps, AOI statistics) and model layers
computed only when the image is shown.

Opening reads the store's sessions, trials and labels, nothing else. :meth:`ViewerProject.view`
computes one image with the scorer of :func:`gazelab.analysis.compare.analyse_project`
(:mod:`gazelab.analysis.scoring`): its annotators' fixations, heatmaps in image px,
human-vs-human metrics, AOI statistics and, when a :class:`ModelLayer` is given, the
model's relevance (through the saliency cache), its heatmap from the ``n`` most relevant
pixels and the human-vs-model metrics, so its rows are compare's rows. Each trial's
samples are read once (fixations and the scanpath's samples from one read), and its
fixations and samples are cached on disk
(:class:`GazeCache`, beside the saliency cache), so an image seen once opens from the
cache next time and the ``n`` of docs/comparison.md (mean fixation points per annotator and image,
over every trial) is cheap after the first survey.

The window (:mod:`gazelab.app.viewer`) drives this from a worker thread; tests and
benchmarks call it directly.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.analysis.aoi import AOI, aois_from_regions, image_aoi_rows, relevance_on_image
from gazelab.analysis.compare import Comparison, annotator_keys
from gazelab.analysis.scanpath import Scanpath
from gazelab.analysis.scoring import (
    METRICS,
    AnalysisError,
    AnnotatorGaze,
    ImageAnalysis,
    annotator_gaze,
    class_name,
    model_n,
    predicted_class,
    score_image,
)
from gazelab.fileio import atomic_write
from gazelab.settings import AnalysisSettings, QualitySettings, Settings

CACHE_VERSION = 4  # 3: the replay's samples mapped through the trial's placement; 4: its
# elliptical kernel (kernel_xy) kept with the gaze
IMAGES_KEPT = 8
"""Decoded images kept (most recently used), so an image shown again is not decoded again."""
Progress = Callable[[str, int, int], None]


def face_region_name(cx: float, cy: float, rx: float) -> str:
    """The facial feature at a diagonal region's centre ``(cx, cy)`` with horizontal radius
    ``rx``, all as fractions of the image's width and height, in an aligned frontal face
    (the image sets' faces: eyes at about 0.4 of the height, the nose at 0.5, the mouth at
    0.7). Sides are as seen in the image."""
    if cy < 0.33:
        return "brows"
    if cy < 0.48:
        if rx >= 0.15 and abs(cx - 0.5) < 0.1:
            return "eyes"
        return "left eye" if cx < 0.5 else "right eye"
    if cy < 0.6:
        return "nose"
    return "mouth"


def face_region_names(aois: list[AOI], shape: tuple[int, int]) -> list[AOI]:
    """The diagnostic regions' AOIs named by their feature (:func:`face_region_name`)
    instead of ``region 1, 2, ...``; a name that comes twice gets a number."""
    h, w = shape
    out: list[AOI] = []
    seen: dict[str, int] = {}
    for a in aois:
        if a.shape != "ellipse":
            out.append(a)
            continue
        (cx, cy), (rx, _ry), _ = a.coords
        name = face_region_name(cx / w, cy / h, rx / w)
        seen[name] = seen.get(name, 0) + 1
        out.append(AOI(name if seen[name] == 1 else f"{name} {seen[name]}", a.shape, a.coords))
    return out


@dataclass(frozen=True)
class TrialRef:
    """One annotator's trial on an image."""

    session_id: int
    trial_index: int
    annotator: str
    label: str | None
    image_id: str


@dataclass
class ImageEntry:
    """What the image list needs, known without computing anything."""

    image_id: str
    source: str  # image spec of the first session that showed it
    trials: list[TrialRef]
    true_class: str | None = None

    @property
    def labels(self) -> dict[str, str | None]:
        return {t.annotator: t.label for t in self.trials}

    @property
    def disagreement(self) -> bool:
        """Annotators gave different labels (or one differs from the dataset label)."""
        given = {t.label for t in self.trials if t.label is not None}
        if self.true_class is not None and given:
            given.add(self.true_class)
        return len(given) > 1


@dataclass
class ImageView:
    """One image as the viewer shows it."""

    analysis: ImageAnalysis
    scanpaths: dict[str, Scanpath]
    aois: list[AOI]
    aoi_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ModelLayer:
    """A loaded model and the ``n`` of docs/comparison.md for its heatmaps."""

    model: Any
    name: str
    hash: str
    n_points: int
    mean_points: float
    cache: Any = None  # SaliencyCache or None


class GazeCache:
    """Per-trial gaze arrays on disk: ``ROOT/<key>.npz``, written atomically; the key hashes
    the session, trial, label, settings and point source, so any change is a new entry."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get(self, key: str) -> dict[str, NDArray[Any]] | None:
        p = self.root / f"{key}.npz"
        if not p.exists():
            return None
        try:
            with np.load(p) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError):  # unreadable: recompute and overwrite
            return None

    def put(self, key: str, arrays: Mapping[str, NDArray[Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(self.root / f"{key}.npz", buf.getvalue())


class ViewerProject:
    """A store's images for the viewer; see the module docstring. Use from one thread."""

    def __init__(
        self,
        store_path: str | Path,
        analysis: AnalysisSettings | None = None,
        *,
        cache_dir: str | Path | None = None,
        aois: Mapping[str, list[AOI]] | None = None,
        quality: QualitySettings | None = None,
    ) -> None:
        from gazelab.annotation.store import SessionStore

        self.store_path = Path(store_path)
        self.analysis = analysis or AnalysisSettings()
        self.store = SessionStore(self.store_path)
        root = Path(cache_dir) if cache_dir else self.store_path.parent / "saliency-cache"
        self.gaze_cache = GazeCache(root.parent / "gaze-cache")
        self.aoi_file: dict[str, list[AOI]] = {k: list(v) for k, v in (aois or {}).items()}
        self.drawn_aois: dict[str, list[AOI]] = {}
        self.quality = quality
        """``[quality]`` limits: trials they leave out are not shown (``None``: none left out)."""
        self._excluded: dict[int, dict[int, str]] = {}
        self._sources: dict[str, Any] = {}
        self._settings: dict[int, Settings] = {}
        self._shape: dict[str, tuple[int, int]] = {}
        self._pixels: OrderedDict[str, NDArray[np.uint8]] = OrderedDict()
        self._centre: Any = None  # CentreTotals, once computed
        records = self.store.sessions()
        if not records:
            raise AnalysisError(
                f"no sessions in {self.store_path}: record one with 'gazelab annotate'"
            )
        self.records = {r.id: r for r in records}
        self.annotator_of = annotator_keys(records)
        self.annotators = list(dict.fromkeys(self.annotator_of[r.id] for r in records))
        self.entries: list[ImageEntry] = []
        by_id: dict[str, ImageEntry] = {}
        for rec in records:
            labels = self.store.final_labels(rec.id)
            for tr in self.store.trials(rec.id):
                iid, ti = str(tr["image_id"]), int(tr["trial_index"])
                entry = by_id.get(iid)
                if entry is None:
                    entry = by_id[iid] = ImageEntry(iid, rec.image_source, [])
                ref = TrialRef(rec.id, ti, self.annotator_of[rec.id], labels.get(ti), iid)
                entry.trials.append(ref)
        self.entries = sorted(by_id.values(), key=lambda e: e.image_id)
        self._by_id = {e.image_id: e for e in self.entries}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ViewerProject:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def entry(self, image_id: str) -> ImageEntry:
        return self._by_id[image_id]

    # -- sources and classes ----------------------------------------------------------------
    def source(self, spec: str) -> Any:
        """The image set of a session's image spec (opened once)."""
        from gazelab.annotation.session import SessionSetupError
        from gazelab.models.datasets.base import DatasetError
        from gazelab.models.datasets.registry import open_image_set

        if spec not in self._sources:
            try:
                self._sources[spec] = open_image_set(spec)
            except (SessionSetupError, DatasetError) as exc:
                raise AnalysisError(
                    f"the images of image source {spec!r} cannot be rebuilt: {exc}"
                ) from exc
        return self._sources[spec]

    def load_classes(self) -> dict[str, str | None]:
        """Fill every entry's dataset class (opens each image source once)."""
        out: dict[str, str | None] = {}
        for e in self.entries:
            src = self.source(e.source)
            e.true_class = class_name(src.labels.get(e.image_id) if e.image_id in src else None)
            out[e.image_id] = e.true_class
        return out

    def settings(self, session_id: int) -> Settings:
        if session_id not in self._settings:
            rec = self.records[session_id]
            self._settings[session_id] = Settings.from_toml(
                rec.settings_toml, source=f"session {session_id}"
            )
        return self._settings[session_id]

    # -- per-trial gaze, cached on disk -----------------------------------------------------
    def _trial_key(self, ref: TrialRef, image_hw: tuple[int, int]) -> str:
        rec = self.records[ref.session_id]
        h = hashlib.sha256()
        for part in (CACHE_VERSION, rec.uuid, ref.trial_index, ref.label, image_hw,
                     self.analysis.point_source, rec.settings_toml):  # fmt: skip
            h.update(repr(part).encode())
            h.update(b"\0")
        return h.hexdigest()[:24]

    def excluded(self, ref: TrialRef) -> str | None:
        """Why the ``[quality]`` limits leave this trial out (``None``: kept), from the
        data quality stored with the session (:func:`quality_exclusions`)."""
        if self.quality is None:
            return None
        if ref.session_id not in self._excluded:
            from gazelab.annotation.sessions import quality_exclusions

            self._excluded[ref.session_id] = quality_exclusions(
                self.store, ref.session_id, self.settings(ref.session_id), self.quality
            )
        return self._excluded[ref.session_id].get(ref.trial_index)

    def trial(
        self, ref: TrialRef, image_hw: tuple[int, int]
    ) -> tuple[AnnotatorGaze, NDArray[np.float64]] | None:
        """One trial's gaze in image px (:func:`~gazelab.analysis.scoring.annotator_gaze`,
        heatmap built when asked for) and its valid samples ``(V, 3)`` (ms from the image
        onset, x, y image px) for the scanpath; ``None`` when it has no image-phase samples.
        The trial's samples are read once, and cached on disk once the trial is labelled
        (an unlabelled trial may still be recording)."""
        key = self._trial_key(ref, image_hw)
        arrays = self.gaze_cache.get(key)
        if arrays is None:
            from gazelab.analysis.human import trial_gaze

            s = self.settings(ref.session_id)
            found = trial_gaze(self.store, ref.session_id, {ref.image_id: image_hw}, s,
                               {ref.trial_index}, keep_samples=True)  # fmt: skip
            arrays = {"n": np.zeros(0)}  # no image-phase samples: nothing to show
            if found:
                tg = found[0]
                g = annotator_gaze(tg, ref.annotator, ref.session_id, ref.label,
                                   self.analysis.point_source, keep_map=False)  # fmt: skip
                replay = tg.gaze_samples if tg.gaze_samples is not None else np.zeros((0, 3))
                # the image where it really was (the trial's placement), not the square
                frame = tg.placement if tg.placement is not None else tg.layout
                img = frame.screen_to_image(replay[:, 1:]) if len(replay) else np.zeros((0, 2))
                samples = np.column_stack([replay[:, 0], img]).reshape(-1, 3)
                arrays = {"n": np.ones(1), **g.arrays(), "samples": samples}
            if ref.label is not None:
                self.gaze_cache.put(key, arrays)
        if not arrays["n"].size:
            return None
        gaze = AnnotatorGaze.from_arrays(ref.annotator, ref.session_id, ref.label, arrays)
        return gaze, arrays["samples"]

    def image(self, entry: ImageEntry) -> NDArray[np.uint8]:
        """The entry's pixels; the last :data:`IMAGES_KEPT` decoded are kept."""
        iid = entry.image_id
        if iid in self._pixels:
            self._pixels.move_to_end(iid)
            return self._pixels[iid]
        pixels = np.asarray(self.source(entry.source).image(iid))
        self._shape[iid] = (int(pixels.shape[0]), int(pixels.shape[1]))
        self._pixels[iid] = pixels
        while len(self._pixels) > IMAGES_KEPT:
            self._pixels.popitem(last=False)
        return pixels

    def shape(self, entry: ImageEntry) -> tuple[int, int]:
        """The entry's image size ``(H, W)`` px (the image decoded once for it, then kept)."""
        if entry.image_id not in self._shape:
            self.image(entry)
        return self._shape[entry.image_id]

    def regions(self, entry: ImageEntry) -> NDArray[np.float32] | None:
        regions = getattr(self.source(entry.source), "regions", None) or {}
        r = regions.get(entry.image_id)
        return None if r is None else np.asarray(r, dtype=np.float32)

    def aois(self, entry: ImageEntry) -> list[AOI]:
        """The image's AOIs: drawn in the viewer, else from the AOI file, else from the image
        set's diagnostic regions (empty when it has none)."""
        if entry.image_id in self.drawn_aois:
            return list(self.drawn_aois[entry.image_id])
        if entry.image_id in self.aoi_file:
            return list(self.aoi_file[entry.image_id])
        r = self.regions(entry)
        if r is None:
            return []
        return face_region_names(aois_from_regions(r), (int(r.shape[0]), int(r.shape[1])))

    # -- data quality -----------------------------------------------------------------------
    def quality_rows(self) -> list[dict[str, Any]]:
        """Data quality per session, as recorded in the store (Holmqvist et al. 2012
        measures, :mod:`gazelab.gaze.quality`): per-trial sample loss and precision (RMS-S2S,
        STD, degrees) averaged over the trials that have them, and the validations (count,
        passed, mean accuracy of the last one). NaN where the store has none."""
        rows = []
        for sid in sorted(self.records):
            trials = self.store.trial_quality(sid)
            vals = self.store.validation_qualities(sid)

            def mean(attr: str, items: list[Any] = trials) -> float:
                v = np.array([float(getattr(t, attr)) for t in items], dtype=np.float64)
                v = v[np.isfinite(v)]
                return float(v.mean()) if len(v) else math.nan

            shown = sum(1 for e in self.entries for t in e.trials if t.session_id == sid)
            last = vals[-1]["quality"] if vals else None
            rows.append({
                "annotator": self.annotator_of[sid], "session": sid, "trials": shown,
                "trials_rated": len(trials), "loss_pct": mean("loss_pct"),
                "rms_s2s_deg": mean("rms_s2s_deg"), "std_deg": mean("std_deg"),
                "validations": len(vals), "passed": sum(1 for v in vals if v["passed"]),
                "accuracy_deg": last.mean_accuracy_deg if last is not None else math.nan,
            })  # fmt: skip
        return rows

    # -- the docs/comparison.md n over every trial -----------------------------------------------------
    def point_counts(self, entries: list[ImageEntry]) -> list[int]:
        """Fixation points of every trial with gaze on these images (computed or cached)."""
        counts: list[int] = []
        for e in entries:
            hw = self.shape(e)
            for ref in e.trials:
                if self.excluded(ref) is None and (t := self.trial(ref, hw)) is not None:
                    counts.append(len(t[0].points))
        return counts

    def mean_points(self, progress: Progress | None = None, chunk: int = 50) -> float:
        """Mean fixation points per (annotator, image) over every trial with gaze."""
        counts: list[int] = []
        total = len(self.entries)
        for k in range(0, total, chunk):
            if progress:
                progress("fixations", k, total)
            counts += self.point_counts(self.entries[k : k + chunk])
        if progress:
            progress("fixations", total, total)
        return mean_of_counts(counts)

    def load_model(self, path: str | Path, cache_dir: str | Path | None,
                   progress: Progress | None = None) -> ModelLayer:  # fmt: skip
        """Load a classifier and survey the trials for ``n``."""
        from gazelab.models.architectures import load_classifier

        if progress:
            progress("loading model", 0, 1)
        return model_layer(load_classifier(path), self.mean_points(progress), cache_dir)

    # -- one image --------------------------------------------------------------------------
    def view(self, image_id: str, model: ModelLayer | None = None) -> ImageView:
        """Everything the viewer shows for one image (see the module docstring)."""
        e = self._by_id[image_id]
        if e.true_class is None:
            src = self.source(e.source)
            e.true_class = class_name(src.labels.get(image_id) if image_id in src else None)
        pixels = self.image(e)
        hw = self.shape(e)
        im = ImageAnalysis(image_id, e.true_class, pixels, self.regions(e), {})
        scanpaths: dict[str, Scanpath] = {}
        for ref in e.trials:
            t = None if self.excluded(ref) is not None else self.trial(ref, hw)
            if t is None:
                continue
            g, samples = t
            im.add(g)
            assert g.onset_ms is not None and g.duration_ms is not None  # trial() gives them
            scanpaths[ref.annotator] = Scanpath.from_arrays(
                g.fixations, g.onset_ms, g.duration_ms, samples
            )
        rel_img = None
        if model is not None and im.humans:
            rel, predicted = self._relevance(im, model)
            score_image(im, rel, model.n_points, predicted=predicted,
                        human_pairs=self.analysis.human_pairs)  # fmt: skip
            rel_img = relevance_on_image(rel, hw)
        else:
            score_image(im, human_pairs=self.analysis.human_pairs)
        aois = self.aois(e)
        gaze = {a: (sp.points, sp.onset_ms, sp.duration_ms) for a, sp in scanpaths.items()}
        rows = image_aoi_rows(image_id, e.true_class, aois, gaze, rel_img)
        return ImageView(im, scanpaths, aois, rows)

    # -- layout baselines for one image ---------------------------------------------------
    def shapes(self) -> list[tuple[int, int]]:
        """Every entry's image size ``(H, W)`` px (each image decoded once for it)."""
        return [self.shape(e) for e in self.entries]

    def human_maps(self, entry: ImageEntry) -> list[NDArray[np.float64]]:
        """The image's human heatmaps, in the order :meth:`view` builds them."""
        hw = self.shape(entry)
        maps = []
        for ref in entry.trials:
            t = None if self.excluded(ref) is not None else self.trial(ref, hw)
            if t is not None:
                maps.append(t[0].heatmap_or_build())
        return maps

    def centre_totals(self, progress: Progress | None = None) -> Any:
        """The centre-bias sums over every image's human maps (one pass, then kept):
        :class:`~gazelab.analysis.baselines.CentreTotals`."""
        from gazelab.analysis.baselines import CentreTotals

        if self._centre is None:
            ct = CentreTotals()
            for k, e in enumerate(self.entries):
                if progress:
                    progress("centre bias", k, len(self.entries))
                ct.add(self.human_maps(e))
            if progress:
                progress("centre bias", len(self.entries), len(self.entries))
            self._centre = ct
        return self._centre

    def baselines(
        self,
        view: ImageView,
        model: ModelLayer | None = None,
        *,
        draws: int = 3,
        seed: int = 0,
        centre: str = "mean",
        progress: Progress | None = None,
    ) -> list[dict[str, Any]]:
        """The layout baselines of the image of ``view`` (as :meth:`view` computed it with
        ``model``), each row with the observed score beside it.

        Rows as :func:`~gazelab.analysis.baselines.baseline_rows` gives for the image (the
        same partners, drawn over the whole set, and the same centre map, the leave-one-
        image-out mean over every image's human maps), one per (annotator, versus,
        baseline), plus ``observed_of`` (the references of the observed rows),
        ``observed_<metric>`` (the mean of the image's observed rows of
        that annotator and kind, as the summary pairs them) and ``diff_<metric>``
        (observed − baseline). The centre row is given once per kind it serves."""
        from gazelab.analysis.baselines import image_baseline_rows, partner_indices

        im = view.analysis
        i = next(k for k, e in enumerate(self.entries) if e.image_id == im.image_id)
        js = partner_indices(self.shapes(), draws, seed).get(i, [])
        partners = [self.view(self.entries[j].image_id, model).analysis for j in js]
        totals = self.centre_totals(progress)
        own = [g.heatmap_or_build() for g in im.humans.values()]
        cmap = totals.centre_for_image(self.shapes()[i], own, centre)
        out: list[dict[str, Any]] = []
        for r in image_baseline_rows(im, partners, cmap, self.analysis.human_pairs):
            kinds = [r["versus"]] if r["versus"] != "-" else ["human", "model"]
            for kind in kinds:
                obs = [o for o in im.rows if o["annotator"] == r["annotator"]
                       and o["kind"] == kind
                       and (kind == "model" or r["baseline"] == "centre"
                            or o["reference"] == r["reference"])]  # fmt: skip
                if not obs:
                    continue
                row = {**r, "versus": kind, "observed_of": [o["reference"] for o in obs]}
                for m in METRICS:
                    v = np.array([float(o[m]) for o in obs], dtype=np.float64)
                    v = v[np.isfinite(v)]
                    ov = float(v.mean()) if v.size else math.nan
                    row[f"observed_{m}"] = ov
                    row[f"diff_{m}"] = ov - float(r[m])
                out.append(row)
        return out

    def _relevance(self, im: ImageAnalysis, layer: ModelLayer) -> tuple[NDArray[Any], str]:
        """The model's relevance map of the image (through the saliency cache) and its
        predicted class."""
        from gazelab.analysis.cache import cached_relevance
        from gazelab.models.architectures import to_model_input

        model = layer.model
        x = to_model_input([im.image], model.input_shape[1:])
        probs = np.asarray(model.predict(x, verbose=0))
        rel, _ = cached_relevance(model, x, self.analysis.analyzer, layer.cache)
        return rel[0], predicted_class(probs[0])

    # -- all images (summary tables) --------------------------------------------------------
    def comparison(
        self,
        model: ModelLayer | None = None,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[Comparison, list[dict[str, Any]]]:
        """Every image's rows as a :class:`Comparison` (heavy arrays dropped, so 1 000 images
        fit in memory) and every image's AOI rows; for the summary tables."""
        light: list[ImageAnalysis] = []
        aoi_rows: list[dict[str, Any]] = []
        empty = np.zeros((0, 0))
        for k, e in enumerate(self.entries):
            if should_stop is not None and should_stop():
                raise AnalysisError("summary cancelled")
            if progress:
                progress("summary", k, len(self.entries))
            v = self.view(e.image_id, model)
            im = v.analysis
            humans = {a: replace(g, heatmap=empty) for a, g in im.humans.items()}
            light.append(replace(im, image=np.zeros((1, 1), np.uint8), humans=humans,
                                 relevance=None, model_heatmap=None))  # fmt: skip
            aoi_rows += v.aoi_rows
        if progress:
            progress("summary", len(self.entries), len(self.entries))
        kernel = next((im.kernel_px for im in light if im.humans), (math.nan, math.nan))
        comp = Comparison(
            images=light,
            annotators=list(self.annotators),
            sessions=sorted(self.records),
            analysis=self.analysis,
            n_points=model.n_points if model else 0,
            mean_points=model.mean_points if model else math.nan,
            kernel_image_px={"c": kernel[0], "radius": kernel[1]},
            model_name=model.name if model else "",
            model_hash=model.hash if model else "",
            settings_toml="",
        )
        return comp, aoi_rows


def mean_of_counts(counts: list[int]) -> float:
    """The docs/comparison.md mean of fixation points per (annotator, image); an error when none."""
    return model_n(counts)[0]


def model_layer(model: Any, mean_points: float, cache_dir: str | Path | None) -> ModelLayer:
    """A loaded model with ``n = round(mean_points)`` (at least 1) and its saliency cache."""
    from gazelab.analysis.cache import SaliencyCache, model_hash

    cache = SaliencyCache(cache_dir) if cache_dir else None
    return ModelLayer(model, str(model.name), model_hash(model),
                      max(1, int(round(mean_points))), mean_points, cache)  # fmt: skip


# -- the baselines tab, Qt-free -------------------------------------------------------------------
BASELINE_COLUMNS = ["pair", "baseline", "obs", "base", "Δ", "÷"]
"""Columns of the viewer's baselines table, for one metric at a time: the pair, the
baseline, the observed score, the baseline's score, observed − baseline and
observed ÷ baseline."""

BASELINE_TIPS = {
    "pair": "reference annotator vs partner (an annotator, the model, or every other "
    "annotator for the centre map)",
    "baseline": "shuffled: the partner's maps on other images of the set (3 seeded draws), "
    "averaged; "
    "centre: the mean of every human map of the other images, cut to one map's area",
    "obs": "the observed score on this image (mean over the pairs the baseline stands for)",
    "base": "the baseline's score",
    "Δ": "observed − baseline: the part of the agreement specific to this image",
    "÷": "observed ÷ baseline (1: the layout alone gives the whole score)",
}


def baseline_table_rows(rows: list[dict[str, Any]], metric: str = "iou") -> list[dict[str, Any]]:
    """:meth:`ViewerProject.baselines` rows as the table shows them for ``metric``: one row
    per (annotator, versus, baseline), ``pair`` ``A vs B`` / ``A vs model`` (the centre
    row: the partners whose observed scores it stands against, ``A vs 3 others`` beyond
    two), then observed, baseline,
    difference and ratio (NaN where the baseline is 0 or missing)."""
    out = []
    for r in rows:
        if r["baseline"] == "shuffled":
            pair, name = f"{r['annotator']} vs {r['reference']}", "shuffled"
        else:
            refs = r.get("observed_of") or ["model" if r["versus"] == "model" else "humans"]
            who = ", ".join(refs) if len(refs) <= 2 else f"{len(refs)} others"
            pair, name = f"{r['annotator']} vs {who}", "centre"
        o, b = float(r[f"observed_{metric}"]), float(r[metric])
        ratio = o / b if math.isfinite(b) and b != 0 else math.nan
        out.append({"pair": pair, "baseline": name, "obs": o, "base": b,
                    "Δ": float(r[f"diff_{metric}"]), "÷": ratio})  # fmt: skip
    return out


def baseline_note(rows: list[dict[str, Any]], set_sentence: str = "", metric: str = "iou") -> str:
    """One line over the baselines table: the image's share of the observed ``metric``
    that other images' maps reach (shuffled, per kind), then the set-wide sentence of a
    compare report when there is one."""
    parts = []
    for kind, who in (("human", "human-vs-human"), ("model", "model-vs-human")):
        sel = [r for r in rows if r["baseline"] == "shuffled" and r["versus"] == kind]
        o = np.array([float(r[f"observed_{metric}"]) for r in sel])
        b = np.array([float(r[metric]) for r in sel])
        ok = np.isfinite(o) & np.isfinite(b)
        if ok.any():
            om, bm = float(o[ok].mean()), float(b[ok].mean())
            share = f" ({bm / om:.0%} layout)" if om > 0 else ""
            parts.append(f"{who} {metric.upper()} {om:.3f}, other images' maps {bm:.3f}{share}")
    draws = max((int(r["draws"]) for r in rows if r["baseline"] == "shuffled"), default=0)
    if draws:
        parts.append(f"shuffled: the partner's maps on {draws} other images")
    text = "This image: " + "; ".join(parts) + "." if parts else (
        "This image: no other image of its size, so no shuffled-image baseline.")  # fmt: skip
    return f"{text}\nThe set (compare report): {set_sentence}" if set_sentence else text


def report_layout_sentence(store_path: str | Path) -> str:
    """The set-wide layout sentence of the project's compare report
    (``<project>/report/baselines_summary.csv``), or ``""`` when there is none."""
    import csv

    from gazelab.analysis.baselines import layout_sentence

    p = Path(store_path).parent / "report" / "baselines_summary.csv"
    try:
        with p.open(newline="") as f:
            rows: list[dict[str, Any]] = list(csv.DictReader(f))
        for r in rows:
            for k in ("observed", "baseline_mean", "difference", "difference_ci", "layout_share"):
                r[k] = float(r[k]) if r.get(k) not in (None, "") else math.nan
            r["images"] = int(float(r["images"] or 0))
        return layout_sentence(rows) if rows else ""
    except (OSError, KeyError, ValueError):
        return ""

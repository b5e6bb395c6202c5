"""Mask export (SPEC §7, ``gazelab masks``): PNGs + one compressed NPZ + a manifest.

Layout of an export folder::

    export.json        what was asked (algorithm, parameters, size, source) and, at the
                       end, ``complete: true`` with the counts
    masks/<id>.png     one 8-bit PNG per image: 255 = keep, 0 = zeroed
    masks.npz          every mask, boolean (H, W), keyed by image id
    manifest.csv       image_id, dataset, algorithm, parameters (JSON), annotator, model,
                       fallback, mask_sha256, image_sha256, png

Crash safety: each PNG, the NPZ and the manifest are written to a temporary
name and renamed, so nothing half-written is ever visible; the manifest and
the NPZ appear only when every mask is done. Re-running the same export skips
the masks whose PNG exists (they are read back, not recomputed), so an
interrupted export, restarted, ends with the same files as an uninterrupted
one. Re-running with other parameters into the same folder is refused.

Byte for byte: the PNGs, ``manifest.csv`` and ``masks.npz`` (written with fixed zip
entry times) of a resumed export equal an uninterrupted one's; ``export.json``
differs in one documented field only, ``reused`` (how many masks this last run read
back instead of computing: 0 for an uninterrupted export). Temporaries left by a
killed export are removed when the next one starts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.errors import GazelabError
from gazelab.fileio import array_sha256, atomic_write, clean_stale_temporaries, safe_filename
from gazelab.models.masks import HUMAN, MODEL_MASKS, MaskParameters, model_mask

MANIFEST_COLUMNS = ("image_id", "dataset", "algorithm", "parameters", "annotator", "model",
                    "fallback", "mask_sha256", "image_sha256", "png")  # fmt: skip


class ExportError(GazelabError, RuntimeError):
    """The export folder is inconsistent or holds another export."""


@dataclass(frozen=True)
class MaskJob:
    """One mask to export; ``compute`` is called only if the mask is not on disk yet."""

    image_id: str
    compute: Callable[[], NDArray[np.bool_]]
    algorithm: str
    dataset: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    annotator: str = ""
    model: str = ""
    fallback: bool = False
    image_sha256: str = ""


@dataclass
class MaskSet:
    """An export read back: masks in manifest order, with their manifest rows."""

    ids: list[str]
    masks: NDArray[np.bool_]  # (N, H, W)
    rows: list[dict[str, str]]
    info: dict[str, Any]

    def mask(self, image_id: str) -> NDArray[np.bool_]:
        return self.masks[self.ids.index(image_id)]


def mask_sha256(mask: NDArray[np.bool_]) -> str:
    """Content hash of a mask: shape and packed bits."""
    m = np.asarray(mask, dtype=bool)
    h = hashlib.sha256(f"{m.shape}".encode())
    h.update(np.packbits(m).tobytes())
    return h.hexdigest()


def _png_bytes(mask: NDArray[np.bool_]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _read_png(path: Path) -> NDArray[np.bool_]:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def _request_diff(old: Any, new: Mapping[str, Any]) -> str:
    """The settings that differ between an export's request and this one: ``key: old -> new``."""
    if not isinstance(old, Mapping):
        return f"an unreadable request {old!r}"
    keys = sorted(set(old) | set(new), key=str)
    return "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys
                     if old.get(k) != new.get(k))  # fmt: skip


def export_masks(
    jobs: Iterable[MaskJob],
    out: str | Path,
    *,
    request: dict[str, Any],
    progress: Callable[[int, int], None] | None = None,
    total: int | None = None,
) -> Path:
    """Write (or finish) an export; returns the manifest path. ``request`` describes the
    export (algorithm, parameters, size, source) and must match an existing one in ``out``.

    ``jobs`` may be a generator (``total`` then gives the count for ``progress``): each job
    is taken once, and only its mask, bit-packed, is kept until the NPZ is written, so an
    export of a whole dataset holds one batch of images at a time (:func:`export_image_set_masks`).
    """
    out = Path(out)
    png_dir = out / "masks"
    png_dir.mkdir(parents=True, exist_ok=True)
    for folder in (out, png_dir):  # temporaries of a killed run
        clean_stale_temporaries(folder)
    info_path = out / "export.json"
    if info_path.exists():
        old = json.loads(info_path.read_text())
        if old.get("request") != request:
            differ = _request_diff(old.get("request"), request)
            raise ExportError(
                f"{out} holds an export made with other settings ({differ}); "
                "choose another --out folder or delete it"
            )
    else:
        atomic_write(
            info_path, json.dumps({"request": request, "complete": False}, indent=2).encode()
        )
    if isinstance(jobs, Sequence):  # all ids known: refuse repeats before writing anything
        total = len(jobs)
        listed = [j.image_id for j in jobs]
        if len(set(listed)) != len(listed):
            dup = sorted({i for i in listed if listed.count(i) > 1})[:3]
            raise ExportError(f"image ids must be unique in one export; repeated: {dup}")
    ids: list[str] = []
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    masks = _PackedMasks()
    kept: list[float] = []
    fallbacks = reused = 0
    for k, job in enumerate(jobs):
        if job.image_id in seen:
            raise ExportError(f"image ids must be unique in one export; repeated: {job.image_id!r}")
        seen.add(job.image_id)
        ids.append(job.image_id)
        png = png_dir / f"{safe_filename(job.image_id)}.png"
        if png.exists():
            mask = _read_png(png)
            reused += 1
        else:
            mask = np.asarray(job.compute(), dtype=bool)
            if mask.ndim != 2:
                raise ExportError(f"mask of {job.image_id!r} has shape {mask.shape}, not (H, W)")
            atomic_write(png, _png_bytes(mask))
        masks.append(mask)
        kept.append(float(mask.mean()))
        fallbacks += int(job.fallback)
        rows.append({
            "image_id": job.image_id,
            "dataset": job.dataset,
            "algorithm": job.algorithm,
            "parameters": json.dumps(job.parameters, sort_keys=True),
            "annotator": job.annotator,
            "model": job.model,
            "fallback": int(job.fallback),
            "mask_sha256": mask_sha256(mask),
            "image_sha256": job.image_sha256,
            "png": f"masks/{png.name}",
        })  # fmt: skip
        if progress:
            progress(k + 1, total if total is not None else k + 1)
    masks.ids = np.array(ids, dtype=object).astype(str)
    atomic_write(out / "masks.npz", npz_bytes(masks))
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(out / "manifest.csv", text.getvalue().encode())
    done = {
        "request": request,
        "complete": True,
        "masks": len(ids),
        "reused": reused,
        "fallbacks": fallbacks,
        "kept_fraction": float(np.mean(kept)) if kept else 0.0,
    }
    atomic_write(info_path, json.dumps(done, indent=2).encode())
    return out / "manifest.csv"


class _PackedMasks(Mapping[str, NDArray[Any]]):
    """The masks of an export, bit-packed (1/8 byte a pixel) in order, read as the NPZ's
    ``m0, m1, ..., ids`` entries: each is unpacked only while it is written."""

    def __init__(self) -> None:
        self._packed: list[tuple[tuple[int, ...], NDArray[np.uint8]]] = []
        self.ids: NDArray[Any] = np.array([], dtype=str)

    def append(self, mask: NDArray[np.bool_]) -> None:
        self._packed.append((mask.shape, np.packbits(mask)))

    def __getitem__(self, key: str) -> NDArray[Any]:
        if key == "ids":
            return self.ids
        shape, bits = self._packed[int(key[1:])]
        n = int(np.prod(shape))
        return np.unpackbits(bits, count=n).astype(bool).reshape(shape)

    def __iter__(self) -> Iterator[str]:
        yield from (f"m{i}" for i in range(len(self._packed)))
        yield "ids"

    def __len__(self) -> int:
        return len(self._packed) + 1


def npz_bytes(arrays: Mapping[str, NDArray[Any]]) -> bytes:
    """A compressed NPZ (as ``np.savez_compressed`` writes) with fixed zip entry times, so
    the same arrays always give the same bytes (a resumed export equals a clean one)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
    return buf.getvalue()


def load_masks(folder: str | Path, *, verify: bool = True) -> MaskSet:
    """Read an export back; with ``verify`` every mask's hash is checked against the
    manifest and the PNG against the NPZ."""
    folder = Path(folder)
    info_path, manifest = folder / "export.json", folder / "manifest.csv"
    if not info_path.exists():
        raise ExportError(f"{folder} is not a mask export (no export.json)")
    info = json.loads(info_path.read_text())
    if not info.get("complete") or not manifest.exists():
        raise ExportError(f"{folder}: the export is incomplete; run the same export again")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    with np.load(folder / "masks.npz") as z:
        ids = [str(i) for i in z["ids"]]
        masks = (
            np.stack([z[f"m{i}"] for i in range(len(ids))]) if ids else np.zeros((0, 0, 0), bool)
        )
    if [r["image_id"] for r in rows] != ids:
        raise ExportError(f"{manifest}: image ids differ from masks.npz")
    if verify:
        for r, m in zip(rows, masks, strict=True):
            if mask_sha256(m) != r["mask_sha256"]:
                raise ExportError(
                    f"{manifest}: mask of {r['image_id']!r} does not match its hash; re-export"
                )
            if not np.array_equal(_read_png(folder / r["png"]), m):
                raise ExportError(f"{folder / r['png']}: PNG differs from masks.npz; re-export")
    return MaskSet(ids, masks.astype(bool), rows, info)


def image_sha256(x: NDArray[Any]) -> str:
    """Hash of an image's pixels (dtype, shape, bytes)."""
    return array_sha256(x)


def masked_images(
    images: NDArray[np.float32], ids: Iterable[str], masks: MaskSet
) -> NDArray[np.float32]:
    """``I ⊙ M`` for a batch (``(N, H, W, C)``, model input) by id; masks are resized
    (nearest) when the export's size differs from the images'."""
    from gazelab.models.masks import apply_mask

    out = np.empty_like(images)
    for k, mask in enumerate(_masks_for(ids, masks, images.shape[1:3])):
        out[k] = apply_mask(images[k], mask)
    return out


def _masks_for(
    ids: Iterable[str], masks: MaskSet, shape: tuple[int, ...]
) -> Iterator[NDArray[np.bool_]]:
    """The export's mask of each id, resized (nearest) to ``shape``; a missing id is an error."""
    index = {iid: k for k, iid in enumerate(masks.ids)}
    for iid in ids:
        if iid not in index:
            raise ExportError(f"no mask for image {iid!r} in this export")
        m = masks.masks[index[iid]]
        yield m if m.shape == tuple(shape) else resize_mask(m, shape)


def resize_mask(mask: NDArray[np.bool_], shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """Nearest-neighbour resize of a mask to ``(H, W)``."""
    from PIL import Image

    im = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
    return np.asarray(im.resize((int(shape[1]), int(shape[0])), Image.Resampling.NEAREST)) > 127


# -- jobs ------------------------------------------------------------------------------------
def _fit(mask: NDArray[np.bool_], size: int | None) -> NDArray[np.bool_]:
    return mask if size is None or mask.shape == (size, size) else resize_mask(mask, (size, size))


def relevance_kernel(settings: Any, rel_size: int) -> tuple[float, float]:
    """The §5 kernel in relevance-map pixels, for an image that fills the stimulus square
    and is resized to ``rel_size`` for the model: stimulus px × rel_size / square_px."""
    from gazelab.gaze.heatmaps import HeatmapKernel

    k = HeatmapKernel.from_geometry(settings.display, settings.heatmap.span_deg,
                                    settings.heatmap.fwhm_fraction)  # fmt: skip
    f = rel_size / settings.stimulus.square_px
    return k.c * f, k.radius * f


def jobs_from_relevance(
    ids: Sequence[str],
    relevance: NDArray[np.float32],
    algorithm: str,
    *,
    settings: Any,
    n: int,
    dataset: str = "",
    model: str = "",
    size: int | None = None,
    image_hashes: Sequence[str] | None = None,
) -> list[MaskJob]:
    """Model masks for a whole dataset (no gaze needed)."""
    if algorithm not in MODEL_MASKS:
        raise ExportError(f"{algorithm!r} is not a model mask; use {', '.join(MODEL_MASKS)}")
    c, r = relevance_kernel(settings, int(relevance.shape[-1]))
    mp = MaskParameters(settings.masks.negative_fraction, n, c, r)
    params = MODEL_MASKS[algorithm].recorded(mp)

    def job(k: int) -> MaskJob:
        return MaskJob(
            ids[k],
            lambda: _fit(model_mask(relevance[k], algorithm, mp), size),
            algorithm, dataset, params, "", model, False,
            image_hashes[k] if image_hashes else "",
        )  # fmt: skip

    return [job(k) for k in range(len(ids))]


def jobs_from_comparison(
    comp: Any,
    algorithm: str,
    *,
    settings: Any,
    size: int,
    annotator: str | None = None,
    mixed: bool = False,
    dataset: str = "",
) -> list[MaskJob]:
    """Masks for the images of an analysed project (:class:`~gazelab.analysis.compare.Comparison`).

    ``human``: the heatmap of the annotator's fixations (``annotator=None``: all annotators'
    fixations pooled), at ``size``×``size``. Images nobody looked at are skipped, or with
    ``mixed`` fall back to the model's perceptive mask (recorded as ``fallback``)."""
    from gazelab.models.masks import human_mask_from_fixations

    jobs: list[MaskJob] = []
    for im in comp.images:
        rel = im.relevance
        shape = (int(im.image.shape[0]), int(im.image.shape[1]))
        c_rel, r_rel = relevance_kernel(settings, int(rel.shape[-1]))
        fallback_params = MaskParameters(0.0, comp.n_points, c_rel, r_rel)
        ihash = image_sha256(im.image)
        if algorithm != HUMAN:
            jobs += jobs_from_relevance([im.image_id], rel[None], algorithm, settings=settings,
                                        n=comp.n_points, dataset=dataset, model=comp.model_hash,
                                        size=size, image_hashes=[ihash])  # fmt: skip
            continue
        who = [annotator] if annotator else list(im.humans)
        pts = [im.humans[a].points for a in who if a in im.humans]
        points = np.concatenate(pts) if pts else np.zeros((0, 2))
        if len(points):
            c_img, r_img = im.kernel_px

            def compute(points=points, shape=shape, c_img=c_img, r_img=r_img):  # type: ignore[no-untyped-def]
                return human_mask_from_fixations(points, shape, (size, size), c_img, r_img)

            jobs.append(MaskJob(im.image_id, compute, HUMAN, dataset,
                                {"point_source": comp.analysis.point_source,
                                 "points": int(len(points))},
                                annotator or "+".join(who), "", False, ihash))  # fmt: skip
        elif mixed:

            def fallback(rel=rel, p=fallback_params):  # type: ignore[no-untyped-def]
                return _fit(model_mask(rel, "perceptive", p), size)

            jobs.append(MaskJob(im.image_id, fallback, "perceptive", dataset,
                                MODEL_MASKS["perceptive"].recorded(fallback_params),
                                annotator or "", comp.model_hash, True, ihash))  # fmt: skip
    return jobs


def triples(
    images: NDArray[np.float32], labels: Sequence[int], ids: Sequence[str], masks: MaskSet
) -> Iterable[tuple[NDArray[np.float32], NDArray[np.bool_], int]]:
    """(image, mask, label) per training image, the mask resized (nearest) to the image;
    an image without a mask in the export is an error naming it."""
    for k, m in enumerate(_masks_for(ids, masks, images.shape[1:3])):
        yield images[k], m, int(labels[k])


# -- whole exports, as `gazelab masks` runs them ------------------------------------------
@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: its manifest, how many masks, how many were fallbacks."""

    manifest: Path
    masks: int
    fallbacks: int


def image_set_jobs(
    images: Any,
    algorithm: str,
    relevance_of: Callable[[list[int], NDArray[np.float32] | None], NDArray[np.float32]],
    *,
    settings: Any,
    n: int,
    input_shape: tuple[int, ...] | None,
    dataset: str = "",
    model: str = "",
    size: int | None = None,
    batch: int = 256,
) -> Iterator[MaskJob]:
    """Model-mask jobs for an :class:`~gazelab.models.datasets.base.ImageSet`, made batch by
    batch: ``batch`` images are decoded one at a time, hashed and (with ``input_shape``)
    turned into model input, then dropped; ``relevance_of(positions, x)`` gives their
    ``(B, S, S)`` relevance. Memory is one batch of model input and relevance, whatever the
    size of the set."""
    from gazelab.models.architectures import to_model_input

    for start in range(0, len(images), batch):
        idx = list(range(start, min(start + batch, len(images))))
        hashes: list[str] = []
        x = None if input_shape is None else np.empty((len(idx), *input_shape), np.float32)
        for j, k in enumerate(idx):
            img = images.image(k)
            hashes.append(image_sha256(img))
            if x is not None and input_shape is not None:
                x[j] = to_model_input([img], input_shape)[0]
            del img  # the decoded image (full size) is not kept past its row
        rel = relevance_of(idx, x)
        yield from jobs_from_relevance(
            [images.ids[k] for k in idx], rel, algorithm, settings=settings, n=n,
            dataset=dataset, model=model, size=size, image_hashes=hashes,
        )  # fmt: skip


def export_image_set_masks(
    model: Any,
    images: str,
    algorithm: str,
    out: str | Path,
    *,
    settings: Any,
    request: dict[str, Any],
    n: int,
    size: int | None = None,
    analyzer: str | None = None,
    cache: str | Path | None = None,
    relevance: str | Path | None = None,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """``gazelab masks --images``: model masks for a whole image set (spec as for
    :func:`~gazelab.models.datasets.registry.open_image_set`), streamed ``batch`` images at a
    time. Relevance comes from ``relevance`` (shards of ``gazelab saliency --dataset`` for
    this model and these images) or is computed with ``analyzer`` (cached in ``cache``).
    Images over ``settings.stimulus.max_image_megapixels`` are refused before decoding."""
    from gazelab.analysis.cache import SaliencyCache, cached_relevance, model_hash
    from gazelab.models.datasets.registry import open_image_set

    if algorithm == HUMAN:
        raise ExportError("human masks come from recorded sessions: use --project/--store")
    limit = int(settings.stimulus.max_image_megapixels * 1_000_000)
    src = open_image_set(images, max_pixels=limit)
    mhash = model_hash(model)
    relevance_of: Callable[[list[int], NDArray[np.float32] | None], NDArray[np.float32]]
    if relevance is not None:  # maps written by `gazelab saliency --dataset`
        from gazelab.analysis.dataset_relevance import load_dataset_relevance

        maps = load_dataset_relevance(relevance)
        want = {"model_hash": mhash, "dataset": images}
        if analyzer:
            want["analyzer"] = analyzer
        wrong = [k for k, v in want.items() if maps.meta.get(k) != v]
        if wrong or maps.ids != src.ids:
            raise ExportError(
                f"{relevance} was written for another {', '.join(wrong) or 'image list'}"
                f" ({', '.join(f'{k}={maps.meta.get(k)!r}' for k in wrong)}); run gazelab "
                "saliency --dataset with this --model and these --images"
            )
        relevance_of = lambda idx, _x: np.stack([maps[k] for k in idx])  # noqa: E731
        input_shape = None
    else:
        store = SaliencyCache(cache) if cache else None

        def relevance_of(idx: list[int], x: NDArray[np.float32] | None) -> NDArray[np.float32]:
            assert x is not None
            return cached_relevance(model, x, analyzer or "deep_taylor", store, chunk=batch)[0]

        input_shape = tuple(int(v) for v in model.input_shape[1:])
    jobs = image_set_jobs(src, algorithm, relevance_of, settings=settings, n=n,
                          input_shape=input_shape, dataset=images, model=mhash, size=size,
                          batch=batch)  # fmt: skip
    manifest = export_masks(jobs, out, request=request, progress=progress, total=len(src))
    return ExportSummary(manifest, len(src), 0)


def export_project_masks(
    project: str | Path | None,
    algorithm: str,
    out: str | Path,
    *,
    settings: Any,
    analysis: Any,
    request: dict[str, Any],
    store: str | Path | None = None,
    model: str | Path | None = None,
    cache: str | Path | None = None,
    sessions: Sequence[int] | None = None,
    annotator: str | None = None,
    mixed: bool = False,
    size: int | None = None,
    progress: Any = None,
) -> ExportSummary:
    """``gazelab masks`` on a project: human masks from its sessions' gaze (or model masks of
    its images), after analysing it with the model (``--model`` or the project's
    ``model.keras``). ``progress(stage, done, total)``."""
    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project, annotator_keys
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import load_classifier
    from gazelab.project import ProjectPaths

    paths = ProjectPaths.resolve(project, store=store, model=model, cache=cache)
    if paths.model is None:
        raise ExportError("masks need the model (--model M.keras): its relevance for model "
                          "masks and for the fallback of images without gaze")  # fmt: skip
    with SessionStore(paths.store) as db:
        if annotator:  # a mistyped name fails before the model loads
            records = [r for r in db.sessions() if sessions is None or r.id in sessions]
            known = sorted(set(annotator_keys(records).values()))
            if annotator not in known:
                where = f"sessions {list(sessions)} of " if sessions is not None else ""
                raise ExportError(f"no annotator {annotator!r} in {where}{paths.store}; its "
                                  f"annotators: {', '.join(known) or 'none yet'}")  # fmt: skip
        net = load_classifier(paths.model)
        comp = analyse_project(db, net, sessions, analysis=analysis,
                               cache=SaliencyCache(paths.cache) if paths.cache else None,
                               progress=progress)  # fmt: skip
    jobs = jobs_from_comparison(comp, algorithm, settings=settings,
                                size=size or int(net.input_shape[1]), annotator=annotator,
                                mixed=mixed, dataset=str(paths.store))  # fmt: skip
    if not jobs:
        raise ExportError("no masks to export: nobody looked at these images "
                          "(use --mixed to fall back to model masks)")  # fmt: skip
    stage = (lambda d, t: progress("masks", d, t)) if progress else None
    manifest = export_masks(jobs, out, request=request, progress=stage)
    return ExportSummary(manifest, len(jobs), sum(j.fallback for j in jobs))

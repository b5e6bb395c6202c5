"""The export folder: writing an export crash-safe and resumable (:func:`export_masks`) and
reading it back checked (:func:`load_masks`); the layout and the crash-safety rules are
those of :mod:`gazelab.models.export`.
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

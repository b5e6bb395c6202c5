"""Areas of interest (AOIs): named polygons or ellipses on an image, and the gaze and
relevance statistics per AOI that eye-tracking studies report.

AOIs come from the diagnostic regions of an image set (:func:`aois_from_regions`:
each connected region becomes the ellipse of the same second moments), from a file
(:func:`read_aoi_file`, JSON or CSV keyed by image id) or from the viewer (drawn
and saved with :func:`write_aoi_file`). :func:`aoi_statistics` gives, per AOI, for one
annotator's fixations on one image: dwell time, fixation count, time to first
fixation, visits and revisits, and the share of the model's positive relevance
inside the AOI. Coordinates are image px ``(x, y)``, origin top-left; pixel
``(i, j)`` covers ``[i, i+1) x [j, j+1)`` and is inside an AOI when its centre is. The
fixations come in the same image px through each trial's placement (where the image
really was on screen, :mod:`gazelab.analysis.placement`), so an AOI follows the image
wherever and however large it was shown.

File formats (one AOI per entry; ``angle_deg`` optional, counter-clockwise on screen)::

    JSON  {"IMAGE_ID": [{"name": "eyes", "polygon": [[x, y], ...]},
                        {"name": "mouth", "ellipse": [cx, cy, rx, ry, angle_deg]}]}
    CSV   image_id,name,shape,coords
          img-1,eyes,polygon,"10 10 40 10 40 20"
          img-1,mouth,ellipse,"48 70 20 8 0"
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab.errors import GazelabError

SHAPES = ("polygon", "ellipse")
AOI_COLUMNS = (
    "image_id",
    "class",
    "aoi",
    "annotator",
    "dwell_ms",
    "fixations",
    "ttff_ms",
    "visits",
    "revisits",
    "dwell_share",
    "relevance_share",
)
"""Columns of aoi.csv and of :func:`aoi_statistics` rows (plus image_id/class/annotator)."""


class AOIError(GazelabError, ValueError):
    """An AOI or an AOI file is malformed (the message names the file and the entry)."""


@dataclass(frozen=True)
class AOI:
    """A named area of interest.

    ``shape="polygon"``: ``coords`` are the vertices ``((x, y), ...)`` (at least 3).
    ``shape="ellipse"``: ``coords`` is ``((cx, cy), (rx, ry), (angle_deg, 0))``.
    """

    name: str
    shape: str
    coords: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise AOIError(f"AOI {self.name!r}: shape must be one of {SHAPES}, not {self.shape!r}")
        if self.shape == "polygon" and len(self.coords) < 3:
            raise AOIError(f"AOI {self.name!r}: a polygon needs 3 or more vertices")
        if self.shape == "ellipse":
            if len(self.coords) != 3 or min(self.coords[1]) <= 0:
                raise AOIError(f"AOI {self.name!r}: an ellipse needs a centre and radii > 0")
        if not all(math.isfinite(v) for p in self.coords for v in p):
            raise AOIError(f"AOI {self.name!r}: coordinates must be finite numbers")

    @classmethod
    def polygon(cls, name: str, vertices: ArrayLike) -> AOI:
        v = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
        return cls(name, "polygon", tuple((float(x), float(y)) for x, y in v))

    @classmethod
    def ellipse(
        cls, name: str, centre: Sequence[float], radii: Sequence[float], angle_deg: float = 0.0
    ) -> AOI:
        return cls(
            name,
            "ellipse",
            (
                (float(centre[0]), float(centre[1])),
                (float(radii[0]), float(radii[1])),
                (float(angle_deg), 0.0),
            ),
        )

    def contains(self, points_xy: ArrayLike) -> NDArray[np.bool_]:
        """Which points ``(N, 2)`` lie inside (polygon: even-odd rule; ellipse: closed)."""
        p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        x, y = p[:, 0], p[:, 1]
        if self.shape == "ellipse":
            (cx, cy), (rx, ry), (ang, _) = self.coords
            a = math.radians(ang)
            dx, dy = x - cx, y - cy
            # screen y points down: a counter-clockwise angle on screen is -a in these axes
            u = dx * math.cos(a) - dy * math.sin(a)
            v = dx * math.sin(a) + dy * math.cos(a)
            out: NDArray[np.bool_] = (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
            return out
        inside = np.zeros(len(p), dtype=bool)
        verts = self.coords
        for (x1, y1), (x2, y2) in zip(verts, verts[1:] + verts[:1], strict=True):
            crosses = (y1 > y) != (y2 > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (x < xc)
        return inside

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """``(H, W)`` bool: pixels whose centre is inside."""
        h, w = shape
        yy, xx = np.mgrid[0:h, 0:w]
        pts = np.column_stack([xx.ravel() + 0.5, yy.ravel() + 0.5])
        return self.contains(pts).reshape(h, w)

    def outline(self, n: int = 64) -> NDArray[np.float64]:
        """Closed outline ``(K, 2)`` for drawing (ellipses sampled at ``n`` points)."""
        if self.shape == "polygon":
            return np.asarray(self.coords, dtype=np.float64)
        (cx, cy), (rx, ry), (ang, _) = self.coords
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        a = math.radians(ang)
        u, v = rx * np.cos(t), ry * np.sin(t)
        return np.column_stack(
            [cx + u * math.cos(a) + v * math.sin(a), cy - u * math.sin(a) + v * math.cos(a)]
        )

    def to_json(self) -> dict[str, Any]:
        if self.shape == "polygon":
            return {"name": self.name, "polygon": [list(p) for p in self.coords]}
        (cx, cy), (rx, ry), (ang, _) = self.coords
        return {"name": self.name, "ellipse": [cx, cy, rx, ry, ang]}


def aois_from_regions(
    regions: NDArray[np.floating[Any]],
    *,
    threshold: float = 0.5,
    min_area_px: int = 4,
    prefix: str = "region",
) -> list[AOI]:
    """Each connected part of ``regions > threshold`` (a diagnostic-region map in [0, 1],
    ``(H, W)``) as the ellipse with its area's second moments (a filled ellipse of radii
    ``a, b`` has variances ``a²/4, b²/4``). Named ``region 1, 2, ...`` by rows (bands of a
    sixth of the height) top to bottom, left to right within a row; parts under
    ``min_area_px`` pixels are dropped."""
    from scipy import ndimage

    lab, k = ndimage.label(np.asarray(regions) > threshold)
    found: list[tuple[float, float, AOI]] = []
    for i in range(1, k + 1):
        ys, xs = np.nonzero(lab == i)
        if len(xs) < min_area_px:
            continue
        x, y = xs + 0.5, ys + 0.5
        cx, cy = float(x.mean()), float(y.mean())
        cov = np.cov(np.vstack([x, y])) if len(xs) > 1 else np.eye(2) / 12
        cov = cov + np.eye(2) / 12  # a pixel's own extent (uniform over the unit square)
        evals, evecs = np.linalg.eigh(cov)
        rx, ry = 2 * math.sqrt(evals[1]), 2 * math.sqrt(evals[0])
        ux, uy = evecs[:, 1]
        angle = -math.degrees(math.atan2(uy, ux))  # counter-clockwise on screen
        found.append((cy, cx, AOI.ellipse("", (cx, cy), (rx, ry), angle)))
    band = max(1.0, lab.shape[0] / 6)  # centres this close in y count as one row
    found.sort(key=lambda t: (int(t[0] // band), t[1]))
    return [AOI(f"{prefix} {n}", a.shape, a.coords) for n, (_, _, a) in enumerate(found, start=1)]


# -- statistics -------------------------------------------------------------------------------
def aoi_statistics(
    aoi: AOI,
    fixations_xy: ArrayLike,
    onset_ms: ArrayLike,
    duration_ms: ArrayLike,
    relevance: NDArray[np.floating[Any]] | None = None,
) -> dict[str, float]:
    """Gaze statistics of one AOI for one annotator's fixations on one image.

    Parameters
    ----------
    aoi : AOI
    fixations_xy : (F, 2) float, image px
    onset_ms, duration_ms : (F,) float, ms (onset from the image onset)
    relevance : (H, W) float or None
        The model's relevance resampled to image px (:func:`relevance_on_image`).

    Returns
    -------
    dict
        ``dwell_ms`` (sum of the durations of fixations inside), ``fixations`` (count),
        ``ttff_ms`` (onset of the first fixation inside; NaN if none), ``visits`` (runs of
        consecutive fixations inside, in time order), ``revisits`` (``visits - 1``, at
        least 0), ``dwell_share`` (dwell / total fixation time; NaN with no fixation) and
        ``relevance_share`` (positive relevance inside / all positive relevance; NaN
        without a model or with no positive relevance).
    """
    xy = np.asarray(fixations_xy, dtype=np.float64).reshape(-1, 2)
    on = np.asarray(onset_ms, dtype=np.float64).reshape(-1)
    du = np.asarray(duration_ms, dtype=np.float64).reshape(-1)
    order = np.argsort(on, kind="stable")
    xy, on, du = xy[order], on[order], du[order]
    inside = aoi.contains(xy)
    entries = int(np.count_nonzero(inside & ~np.concatenate([[False], inside[:-1]])))
    total = float(du.sum())
    dwell = float(du[inside].sum())
    return {
        "dwell_ms": dwell,
        "fixations": int(inside.sum()),
        "ttff_ms": float(on[inside][0]) if inside.any() else math.nan,
        "visits": entries,
        "revisits": max(entries - 1, 0),
        "dwell_share": dwell / total if total > 0 else math.nan,
        "relevance_share": relevance_share(aoi, relevance) if relevance is not None else math.nan,
    }


def relevance_share(aoi: AOI, relevance: NDArray[np.floating[Any]]) -> float:
    """Share of the positive relevance (``(H, W)``, image px) that lies inside ``aoi``."""
    r = np.clip(np.asarray(relevance, dtype=np.float64), 0.0, None)
    total = float(r.sum())
    if total <= 0:
        return math.nan
    return float(r[aoi.mask((r.shape[0], r.shape[1]))].sum()) / total


def relevance_on_image(
    relevance: NDArray[np.floating[Any]], image_hw: tuple[int, int]
) -> NDArray[np.float64]:
    """A model-input relevance map ``(S, S)`` on image pixels ``(H, W)``: each image pixel
    takes the model-input pixel its centre falls in (the model sees the whole image
    resized, each axis on its own, as :func:`gazelab.gaze.geometry.model_input_to_image`)."""
    r = np.asarray(relevance, dtype=np.float64)
    (mh, mw), (h, w) = r.shape[:2], image_hw
    rows = np.minimum(((np.arange(h) + 0.5) * mh / h).astype(int), mh - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * mw / w).astype(int), mw - 1)
    out: NDArray[np.float64] = r[np.ix_(rows, cols)]
    return out


def image_aoi_rows(
    image_id: str,
    true_class: str | None,
    aois: Sequence[AOI],
    gaze: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike]],
    relevance: NDArray[np.floating[Any]] | None = None,
) -> list[dict[str, Any]]:
    """aoi.csv rows of one image: one per (AOI, annotator); ``gaze`` maps annotator ->
    ``(fixations_xy, onset_ms, duration_ms)``; ``relevance`` is in image px."""
    rows: list[dict[str, Any]] = []
    for a in aois:
        share = relevance_share(a, relevance) if relevance is not None else math.nan
        for who, (xy, on, du) in gaze.items():
            st = aoi_statistics(a, xy, on, du)
            st["relevance_share"] = share
            rows.append({"image_id": image_id, "class": true_class, "aoi": a.name,
                         "annotator": who, **st})  # fmt: skip
    return rows


# -- files ------------------------------------------------------------------------------------
def _entry(raw: Any, where: str) -> AOI:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise AOIError(f"{where}: each AOI needs a 'name' and a 'polygon' or 'ellipse'")
    try:
        if "polygon" in raw:
            return AOI.polygon(raw["name"], raw["polygon"])
        if "ellipse" in raw:
            e = [float(v) for v in raw["ellipse"]]
            if len(e) not in (4, 5):
                raise AOIError(f"{where}: ellipse is [cx, cy, rx, ry(, angle_deg)], got {e}")
            return AOI.ellipse(raw["name"], e[:2], e[2:4], e[4] if len(e) == 5 else 0.0)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, AOIError):
            raise
        raise AOIError(f"{where}: AOI {raw.get('name')!r}: {exc}") from exc
    raise AOIError(f"{where}: AOI {raw['name']!r} has neither 'polygon' nor 'ellipse'")


def parse_aois(text: str, *, fmt: str, source: str = "<text>") -> dict[str, list[AOI]]:
    """AOIs by image id from JSON or CSV text (see the module docstring)."""
    out: dict[str, list[AOI]] = {}
    if fmt == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AOIError(f"{source}: not valid JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise AOIError(f"{source}: expected an object of image id -> list of AOIs")
        for iid, items in doc.items():
            if not isinstance(items, list):
                raise AOIError(f"{source}: image {iid!r}: expected a list of AOIs")
            out[str(iid)] = [_entry(r, f"{source}, image {iid!r}") for r in items]
        return out
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        need = {"image_id", "name", "shape", "coords"}
        if not need <= set(reader.fieldnames or ()):
            raise AOIError(f"{source}: CSV needs the columns {sorted(need)}")
        for line, row in enumerate(reader, start=2):
            where = f"{source}, line {line}"
            try:
                nums = [float(v) for v in str(row["coords"]).replace(",", " ").split()]
            except ValueError as exc:
                raise AOIError(f"{where}: coords must be numbers ({exc})") from exc
            shape = str(row["shape"]).strip()
            if shape == "polygon":
                if len(nums) % 2:
                    raise AOIError(f"{where}: a polygon needs x y pairs")
                raw: dict[str, Any] = {"name": row["name"], "polygon": np.reshape(nums, (-1, 2))}
            elif shape == "ellipse":
                raw = {"name": row["name"], "ellipse": nums}
            else:
                raise AOIError(f"{where}: shape must be 'polygon' or 'ellipse', not {shape!r}")
            out.setdefault(str(row["image_id"]), []).append(_entry(raw, where))
        return out
    raise AOIError(f"{source}: AOI files are .json or .csv, not {fmt!r}")


def read_aoi_file(path: str | Path) -> dict[str, list[AOI]]:
    """AOIs by image id from a ``.json`` or ``.csv`` file (see the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AOIError(f"cannot read AOI file {p}: {exc}") from exc
    return parse_aois(text, fmt=p.suffix.lower().lstrip("."), source=str(p))


def write_aoi_file(path: str | Path, aois: Mapping[str, Sequence[AOI]]) -> Path:
    """Write AOIs by image id as JSON (readable by :func:`read_aoi_file`)."""
    from gazelab.fileio import atomic_write

    p = Path(path)
    doc = {iid: [a.to_json() for a in items] for iid, items in aois.items()}
    atomic_write(p, json.dumps(doc, indent=1))
    return p


def comparison_aoi_rows(
    comp: Any, aois: Mapping[str, Sequence[AOI]] | None = None
) -> list[dict[str, Any]]:
    """aoi.csv rows of a :class:`~gazelab.analysis.compare.Comparison`: for every image, its
    AOIs (from ``aois`` by image id, else from the image's diagnostic regions; images with
    neither are skipped) against every annotator's fixations and the model's relevance."""
    rows: list[dict[str, Any]] = []
    for im in comp.images:
        if aois is not None and im.image_id in aois:
            found = list(aois[im.image_id])
        elif im.regions is not None:
            found = aois_from_regions(im.regions)
        else:
            continue
        hw = (int(im.image.shape[0]), int(im.image.shape[1]))
        rel = relevance_on_image(im.relevance, hw) if im.relevance is not None else None
        gaze = {
            a: (g.fixations, g.onset_ms, g.duration_ms)
            for a, g in im.humans.items()
            if g.onset_ms is not None and g.duration_ms is not None
        }
        rows += image_aoi_rows(im.image_id, im.true_class, found, gaze, rel)
    return rows


def unmatched_aoi_images(comp: Any, aois: Mapping[str, Sequence[AOI]]) -> list[str]:
    """Image ids of an AOI file that the comparison does not hold (a typo, or a file
    made for another image set): their AOIs are not used."""
    shown = {im.image_id for im in comp.images}
    return sorted(set(aois) - shown)


def write_aoi_csv(
    comp: Any, folder: str | Path, aois: Mapping[str, Sequence[AOI]] | None = None
) -> Path:
    """Write ``folder/aoi.csv`` (:data:`AOI_COLUMNS`, one row per image, AOI and annotator)."""
    import pandas as pd

    from gazelab.fileio import atomic_write

    out = Path(folder) / "aoi.csv"
    frame = pd.DataFrame(comparison_aoi_rows(comp, aois), columns=list(AOI_COLUMNS))
    atomic_write(out, frame.to_csv(index=False))
    return out


def aoi_means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean AOI statistics per (AOI, annotator) over images (NaN-aware; ``images`` counts
    the images where the AOI exists)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["aoi"], r["annotator"]), []).append(r)
    out = []
    for (aoi, who), rs in sorted(groups.items()):
        row: dict[str, Any] = {"aoi": aoi, "annotator": who, "images": len(rs)}
        for k in ("dwell_ms", "fixations", "ttff_ms", "revisits", "relevance_share"):
            v = np.array([float(r[k]) for r in rs])
            v = v[np.isfinite(v)]
            row[k] = float(v.mean()) if len(v) else math.nan
        out.append(row)
    return out

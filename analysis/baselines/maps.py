"""Centre-bias maps: a centred Gaussian, or the leave-one-image-out mean of the unit-mass
human maps (:func:`leave_one_out_means`; :class:`CentreTotals` keeps its running sums
for one image at a time), cut to the support of one human map (:func:`keep_top_fraction`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

CENTRES = ("mean", "gaussian")
"""Centre-bias maps: the leave-one-image-out mean of the human maps, or a centred Gaussian."""


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


def keep_top_fraction(m: ArrayLike, fraction: float, *, copy: bool = True) -> NDArray[np.float64]:
    """``m`` with all but its ``round(fraction × size)`` largest positive pixels set to 0
    (ties at the cut kept, so a few more may stay); the whole map for ``fraction >= 1``.
    ``copy=False``: a float64 ``m`` is cut in place (and returned)."""
    a = np.array(m, dtype=np.float64, copy=copy)
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

"""Dataset layouts registered by name: ``load_dataset("ck+", path)``.

Every loader takes ``(root, *, max_pixels=None)``: the pixel limit of
:func:`~gazelab.models.datasets.base.read_image` (``stimulus.max_image_megapixels``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gazelab.models.datasets.affectnet import load_affectnet
from gazelab.models.datasets.base import DatasetError, ImageSet
from gazelab.models.datasets.ckplus import load_ckplus
from gazelab.models.datasets.ferplus import load_ferplus
from gazelab.models.datasets.folder import load_folder

LOADERS: dict[str, Callable[..., ImageSet]] = {
    "ck+": load_ckplus,
    "fer+": load_ferplus,
    "affectnet": load_affectnet,
    "folder": load_folder,
}


def load_image_set(spec: str, *, max_pixels: int | None = None) -> ImageSet:
    """An image set from a source spec: ``synthetic:N:SEED[:SIZE][:subjects=K][:renderer=b]``
    (images rendered in memory; subject ids with ``subjects=``) or ``LAYOUT:PATH`` for a
    registered layout (``ck+:``, ``fer+:``, ``affectnet:``, ``folder:``)."""
    kind, _, rest = spec.partition(":")
    if kind == "synthetic":
        from gazelab.models.synthetic import parse_synthetic_spec

        try:
            faces = parse_synthetic_spec(spec).faces()
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        n = len(faces.ids)
        return ImageSet(
            name=spec,
            ids=list(faces.ids),
            labels=faces.labels,
            split=np.array(["all"] * n, dtype=object),
            loader=lambda i: faces.images[i],
            subjects=np.array(faces.subjects, dtype=object),
        )
    if not rest:
        raise DatasetError(f"image source {spec!r} needs a path: {kind}:PATH")
    return load_dataset(kind, rest, max_pixels=max_pixels)


def load_dataset(name: str, path: str | Path, *, max_pixels: int | None = None) -> ImageSet:
    """Load a dataset in a registered layout: ``ck+``, ``fer+``, ``affectnet`` or ``folder``."""
    key = name.lower().replace("ckplus", "ck+").replace("ferplus", "fer+")
    if key not in LOADERS:
        raise DatasetError(f"unknown dataset layout {name!r}; choose one of {sorted(LOADERS)}")
    return LOADERS[key](Path(path), max_pixels=max_pixels)

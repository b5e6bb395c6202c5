"""Procedural faces rendered in memory: ``synthetic:N:SEED[:SIZE][:subjects=K][:renderer=a|b]``
(:mod:`gazelab.models.synthetic`). The only layout whose images carry diagnostic regions."""

from __future__ import annotations

import numpy as np

from gazelab.models.datasets.base import DatasetError, ImageSet
from gazelab.models.datasets.registry import register_layout


def _problem(argument: str) -> str | None:
    from gazelab.models.synthetic import parse_synthetic_spec

    try:
        parse_synthetic_spec(f"synthetic:{argument}")
    except ValueError as exc:
        return str(exc)
    return None


@register_layout(
    "synthetic",
    usage="synthetic:N:SEED[:SIZE][:subjects=K][:renderer=a|b]",
    about="N procedural faces (SIZE px, default 256) with diagnostic regions",
    problem=_problem,
    needs_argument=False,
)
def load_synthetic(argument: str, *, max_pixels: int | None = None) -> ImageSet:
    """Render the faces of ``synthetic:ARGUMENT`` (``max_pixels`` is accepted like every
    loader's; the faces are rendered, never decoded)."""
    from gazelab.models.synthetic import parse_synthetic_spec

    spec = f"synthetic:{argument}" if argument else "synthetic"
    try:
        faces = parse_synthetic_spec(spec).faces()
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    n = len(faces.ids)
    return ImageSet(
        name="synthetic",
        ids=list(faces.ids),
        labels=faces.labels,
        split=np.array(["all"] * n, dtype=object),
        loader=lambda i: faces.images[i],
        subjects=np.array(faces.subjects, dtype=object),
        regions={fid: faces.regions[i] for i, fid in enumerate(faces.ids)},
        spec=spec,
    )

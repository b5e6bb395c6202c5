"""Procedural faces rendered in memory: ``synthetic:N:SEED[:SIZE][:subjects=K][:renderer=a|b]``
(:mod:`gazelab.models.synthetic`). The only layout whose images carry diagnostic regions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gazelab.models.datasets.base import DatasetError, ImageSet
from gazelab.models.datasets.registry import register_layout


def _problem(argument: str) -> str | None:
    from gazelab.models.synthetic import SyntheticSpecError, parse_synthetic_spec

    try:
        parse_synthetic_spec(f"synthetic:{argument}")
    except SyntheticSpecError as exc:
        return exc.problem  # the caller names the image source
    return None


CACHE_BYTES = 256 * 1024 * 1024
"""Rendered faces (image + regions) kept for reuse, at most this many bytes."""


class _LazyFaces:
    """Faces rendered when first asked for, identical to the whole set's rendering, the
    latest kept up to :data:`CACHE_BYTES` (an image set of 1 000 faces opens at once)."""

    def __init__(self, plan: Any, size: int, renderer: str) -> None:
        import collections

        self.plan, self.size, self.renderer = plan, size, renderer
        self.keep = max(8, CACHE_BYTES // (size * size * 5))
        self._done: collections.OrderedDict[int, tuple[Any, Any]] = collections.OrderedDict()

    def face(self, i: int) -> tuple[Any, Any]:
        if i in self._done:
            self._done.move_to_end(i)
            return self._done[i]
        out = self.plan.render(i, self.size, renderer=self.renderer)
        self._done[i] = out
        if len(self._done) > self.keep:
            self._done.popitem(last=False)
        return out


class _LazyRegions(Mapping[str, Any]):
    """Diagnostic regions by image id, rendered with their face on first use."""

    def __init__(self, faces: _LazyFaces, ids: list[str]) -> None:
        self.faces = faces
        self.index = {fid: k for k, fid in enumerate(ids)}

    def __getitem__(self, fid: str) -> Any:
        return self.faces.face(self.index[fid])[1]

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


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
    from gazelab.models.synthetic import face_plan, parse_synthetic_spec

    spec = f"synthetic:{argument}" if argument else "synthetic"
    try:
        parsed = parse_synthetic_spec(spec)
        plan = face_plan(parsed.n, parsed.seed, subjects=parsed.subjects)
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    faces = _LazyFaces(plan, parsed.size, parsed.renderer)
    n = len(plan.ids)
    return ImageSet(
        name="synthetic",
        ids=list(plan.ids),
        labels=plan.labels,
        split=np.array(["all"] * n, dtype=object),
        loader=lambda i: faces.face(i)[0],
        subjects=np.array(plan.subjects, dtype=object),
        regions=_LazyRegions(faces, list(plan.ids)),  # type: ignore[arg-type]
        spec=spec,
    )

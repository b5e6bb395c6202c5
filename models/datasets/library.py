"""``load_dataset("ck+", path)``: a path in a registered layout, by the layout's name
(an image spec such as ``ck+:PATH`` is opened by
:func:`~gazelab.models.datasets.registry.open_image_set`, the one parser of image specs).
"""

from __future__ import annotations

from pathlib import Path

from gazelab.models.datasets.base import ImageSet
from gazelab.models.datasets.registry import find_layout


def load_dataset(name: str, path: str | Path, *, max_pixels: int | None = None) -> ImageSet:
    """Load ``path`` in the registered layout ``name`` (``ck+``, ``fer+``, ``affectnet``,
    ``folder`` ... ; the loader's own result, even an empty set)."""
    return find_layout(name).load(str(path), max_pixels=max_pixels)

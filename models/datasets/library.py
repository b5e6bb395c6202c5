"""Old names of the image-set parser, kept as thin aliases of
:mod:`gazelab.models.datasets.registry` (the one parser of image specs).

``load_image_set(spec)`` is :func:`~gazelab.models.datasets.registry.open_image_set`;
``load_dataset("ck+", path)`` loads a path in a registered layout.
"""

from __future__ import annotations

from pathlib import Path

from gazelab.models.datasets.base import ImageSet
from gazelab.models.datasets.registry import find_layout, open_image_set

load_image_set = open_image_set


def load_dataset(name: str, path: str | Path, *, max_pixels: int | None = None) -> ImageSet:
    """Load ``path`` in the registered layout ``name`` (``ck+``, ``fer+``, ``affectnet``,
    ``folder`` ... ; the loader's own result, even an empty set)."""
    return find_layout(name).load(str(path), max_pixels=max_pixels)

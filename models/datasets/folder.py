"""A plain folder-per-class layout: ``ROOT/<class>/*.png|jpg`` (SPEC §8).

Folder names may be any synonym of the 8 classes (``happiness``, ``angry``...).
An optional ``ROOT/<split>/<class>/`` level (train / val / test) is honoured.
Files reached through links out of ``ROOT`` are skipped (``ImageSet.skipped``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gazelab import CLASSES
from gazelab.models.datasets.base import (
    DatasetError,
    ImageSet,
    class_of,
    inside_root,
    read_image,
    skipped_note,
)
from gazelab.models.datasets.registry import register_layout

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
SPLIT_DIRS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "validation": "val",
    "test": "test",
}


@register_layout("folder", about="a folder per class (ROOT/[train|val|test/]<class>/*.png)")
def load_folder(root: str | Path, *, max_pixels: int | None = None) -> ImageSet:
    """Load ``ROOT/[<split>/]<class>/*``; ``max_pixels`` is
    :func:`~gazelab.models.datasets.base.read_image`'s limit."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if subdirs and all(p.name.lower() in SPLIT_DIRS for p in subdirs):
        groups = [(SPLIT_DIRS[p.name.lower()], p) for p in subdirs]
    else:
        groups = [("all", root)]
    ids: list[str] = []
    labels: list[int] = []
    split: list[str] = []
    paths: list[Path] = []
    skipped: list[str] = []
    for split_name, base in groups:
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            cls = class_of(class_dir.name)
            if cls is None:
                raise DatasetError(
                    f"folder {class_dir} does not name a class; use one of {', '.join(CLASSES)} "
                    "(or a synonym such as 'happiness', 'sad', 'angry')"
                )
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    if inside_root(root, f) is None:
                        skipped.append(f"{f}: outside {root} or not a regular file")
                        continue
                    ids.append(str(f.relative_to(root)))
                    labels.append(CLASSES.index(cls))
                    split.append(split_name)
                    paths.append(f)
    skipped_note("folder", skipped)
    if not ids:
        raise DatasetError(
            f"no images found in {root}; expected {root}/<class>/*.png (classes: {', '.join(CLASSES)})"
        )
    return ImageSet(
        name="folder",
        ids=ids,
        labels=np.array(labels, dtype=np.int64),
        split=np.array(split, dtype=object),
        loader=lambda i: read_image(paths[i], max_pixels=max_pixels),
        skipped=skipped,
    )

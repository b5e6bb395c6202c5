"""A plain folder-per-class layout: ``ROOT/[<split>/]<class>/*.png|jpg`` (docs/settings-and-data.md#data).

Folder names may be any synonym of the 8 classes (``happiness``, ``angry``...).

Splits: when every sub-folder of ``ROOT`` names a split, each is one: ``train`` /
``training``, ``val`` / ``validation`` / ``valid`` / ``dev``, ``test`` / ``testing``, and
FER2013's own ``Training`` / ``PublicTest`` (validation) / ``PrivateTest`` (test). The
public forms load as they are distributed::

    fer2013/train/angry/Training_10118481.jpg      (FER2013 as JPG folders)
    fer2013/validation/angry/PublicTest_....jpg
    fer2013/test/angry/PrivateTest_....jpg
    CK+48/anger/S010_004_00000017.png              (CK+ 48x48 crops, no neutral)

Subjects: the subject id of each image is read from its file name with
``subject_pattern`` (a regular expression searched in the name; its first group, or the
whole match, is the id). The default, :data:`CK_SUBJECT`, reads CK+'s
``S005_001_00000011.png`` as subject ``S005``, so the frames of one person never land on
both sides of a split made by :func:`~gazelab.models.training.split_indices`. Images whose
names do not match have no subject (``''``); ``subject_pattern=''`` reads none.

Hidden folders (``.git`` ...) are passed over; files reached through links out of ``ROOT``
are skipped (``ImageSet.skipped``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gazelab import CLASSES
from gazelab.models.datasets.base import (
    DatasetError,
    ImageSet,
    class_of,
    inside_root,
    read_image,
    read_image_bytes,
    skipped_note,
)
from gazelab.models.datasets.registry import register_layout

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
SPLIT_DIRS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "publictest": "val",
    "test": "test",
    "testing": "test",
    "privatetest": "test",
}
"""Sub-folder name (lower case) -> split; FER2013's ``PublicTest`` is its validation set and
``PrivateTest`` its test set, as the CSV's ``Usage`` column names them."""

CK_SUBJECT = r"^(S\d{3})_\d{3}_"
"""Default ``subject_pattern``: CK+ frame names ``S005_001_00000011.png`` -> ``S005``."""


def subject_of(name: str, pattern: re.Pattern[str] | None) -> str:
    """The subject id in file name ``name`` (first group, or the whole match), else ``''``."""
    if pattern is None:
        return ""
    m = pattern.search(name)
    if m is None:
        return ""
    return m.group(1) if pattern.groups else m.group(0)


def _pattern(subject_pattern: str | None) -> re.Pattern[str] | None:
    if not subject_pattern:
        return None
    try:
        return re.compile(subject_pattern)
    except re.error as exc:
        raise DatasetError(
            f"subject_pattern {subject_pattern!r} is not a regular expression ({exc}); "
            r"give one such as '^(S\d{3})_'"
        ) from None


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


@register_layout(
    "folder",
    about="a folder per class (ROOT/[train|validation|test/]<class>/*.png); subjects from "
    "CK+-style file names",
)
def load_folder(
    root: str | Path, *, max_pixels: int | None = None, subject_pattern: str | None = CK_SUBJECT
) -> ImageSet:
    """Load ``ROOT/[<split>/]<class>/*`` (see the module docstring); ``max_pixels`` is
    :func:`~gazelab.models.datasets.base.read_image`'s limit, ``subject_pattern`` the
    regular expression that finds a subject id in a file name."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    pattern = _pattern(subject_pattern)
    subdirs = _visible_dirs(root)
    if subdirs and all(p.name.lower() in SPLIT_DIRS for p in subdirs):
        groups = [(SPLIT_DIRS[p.name.lower()], p) for p in subdirs]
    else:
        groups = [("all", root)]
    ids: list[str] = []
    labels: list[int] = []
    split: list[str] = []
    subjects: list[str] = []
    paths: list[Path] = []
    skipped: list[str] = []
    for split_name, base in groups:
        for class_dir in _visible_dirs(base):
            cls = class_of(class_dir.name)
            if cls is None:
                raise DatasetError(
                    f"folder {class_dir} does not name a class; use one of {', '.join(CLASSES)} "
                    "(or a synonym such as 'happiness', 'sad', 'angry')"
                    + (
                        ", or name the split folders train, validation, test"
                        if base == root and len(groups) == 1
                        else ""
                    )  # fmt: skip
                )
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    if inside_root(root, f) is None:
                        skipped.append(f"{f}: outside {root} or not a regular file")
                        continue
                    ids.append(str(f.relative_to(root)))
                    labels.append(CLASSES.index(cls))
                    split.append(split_name)
                    subjects.append(subject_of(f.name, pattern))
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
        subjects=np.array(subjects, dtype=object),
        skipped=skipped,
        files=list(paths),
        read_bytes=lambda data, path: read_image_bytes(data, path, max_pixels=max_pixels),
    )

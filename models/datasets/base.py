"""The record every dataset loader returns, and label-name normalisation (SPEC §8)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES


class DatasetError(ValueError):
    """A dataset folder is missing a file or has a malformed one; the message names it."""


SYNONYMS: dict[str, str] = {
    "neutral": "neutral",
    "neutrality": "neutral",
    "none": "neutral",
    "anger": "anger",
    "angry": "anger",
    "mad": "anger",
    "contempt": "contempt",
    "contemptuous": "contempt",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fearful": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sadness",
    "sad": "sadness",
    "surprise": "surprise",
    "surprised": "surprise",
}
"""Words (and dataset folder names) that mean each of the 8 classes (SPEC §2)."""


def class_of(word: str) -> str | None:
    """The class a word names (``'Happiness'`` -> ``'happy'``), or ``None``."""
    return SYNONYMS.get(word.strip().lower())


@dataclass
class ImageSet:
    """Images with labels and ids, loaded lazily.

    Attributes
    ----------
    ids : list of str
        Stable image ids (relative paths or ``name:row``).
    labels : (N,) int64
        Class index into :data:`gazelab.CLASSES`.
    split : (N,) object
        ``'train'``, ``'val'`` or ``'test'`` where the dataset defines a split, else ``'all'``.
    loader : callable
        ``loader(i) -> (H, W) or (H, W, 3) uint8`` image ``i``.
    subjects : (N,) object
        Subject id per image where the dataset has them (CK+), else ``''``.
    """

    name: str
    ids: list[str]
    labels: NDArray[np.int64]
    split: NDArray[np.object_]
    loader: Callable[[int], NDArray[np.uint8]]
    subjects: NDArray[np.object_] = field(default_factory=lambda: np.array([], dtype=object))

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.subjects.size == 0:
            self.subjects = np.array([""] * n, dtype=object)
        if not (len(self.labels) == len(self.split) == len(self.subjects) == n):
            raise ValueError("ids, labels, split and subjects must have the same length")

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, i: int) -> NDArray[np.uint8]:
        return self.loader(i)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, counts, strict=True)}

    def subset(self, index: Sequence[int] | NDArray[np.int64]) -> ImageSet:
        idx = np.asarray(index, dtype=np.int64)
        parent = self.loader
        return ImageSet(
            name=self.name,
            ids=[self.ids[i] for i in idx],
            labels=self.labels[idx],
            split=self.split[idx],
            loader=lambda j: parent(int(idx[j])),
            subjects=self.subjects[idx],
        )


def read_image(path: Path) -> NDArray[np.uint8]:
    """Read an image file as uint8 grey (H, W) or RGB (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB" if im.mode in ("RGBA", "P", "CMYK") else "L")
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DatasetError(f"image file {path} is missing") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"image file {path} cannot be read as an image: {exc}") from exc


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    return path

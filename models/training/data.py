"""Training data: an image set as model input, subject-independent or stratified splits,
and the train/validation arrays a run trains on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.models.training.errors import TrainingError


@dataclass
class TrainData:
    """Model-input arrays (``[0, 1]`` floats) with labels and ids."""

    x_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    ids_train: list[str]
    x_val: NDArray[np.float32]
    y_val: NDArray[np.int64]
    ids_val: list[str]
    source: str = ""


@dataclass
class LabelledImages:
    """A whole image set as model input: ``x`` ``(N, H, W, C)`` in ``[0, 1]``, labels, ids,
    subject ids (``''`` where the dataset has none) and the dataset's own split."""

    x: NDArray[np.float32]
    y: NDArray[np.int64]
    ids: list[str]
    subjects: NDArray[np.object_]
    split: NDArray[np.object_]
    source: str = ""

    def take(self, index: Sequence[int] | NDArray[np.int64]) -> LabelledImages:
        i = np.asarray(index, dtype=np.int64)
        return LabelledImages(self.x[i], self.y[i], [self.ids[k] for k in i], self.subjects[i],
                              self.split[i], self.source)  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)


def load_labelled(
    spec: str,
    input_size: int,
    channels: int = 1,
    *,
    last_frames: int = 1,
    crop: float = 1.0,
) -> LabelledImages:
    """Every image of an image spec (any registered layout:
    :func:`~gazelab.models.datasets.registry.open_image_set`) at the model's input size.
    ``last_frames``: CK+ frames labelled per sequence (the first frame is neutral; layouts
    without sequences ignore it). ``crop``: keep the central square of this fraction of the
    shorter side (a fixed face crop for centred, frontal datasets such as CK+)."""
    from gazelab.models.architectures import to_model_input
    from gazelab.models.datasets.registry import open_image_set, parse_image_spec

    if not 0.1 <= crop <= 1.0:
        raise TrainingError(f"crop = {crop}: give the kept fraction of the side, 0.1-1")
    takes_frames = "last_frames" in parse_image_spec(spec)[0].options()
    ds = open_image_set(spec, **({"last_frames": last_frames} if takes_frames else {}))
    if len(ds) < 4:
        raise TrainingError(f"{spec}: {len(ds)} image(s) are too few to train on")

    def cropped(img: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if crop >= 1.0:
            return img
        h, w = img.shape[:2]
        side = max(1, int(round(min(h, w) * crop)))
        top, left = (h - side) // 2, (w - side) // 2
        return img[top : top + side, left : left + side]

    x = to_model_input([cropped(ds.image(i)) for i in range(len(ds))],
                       (input_size, input_size, channels))  # fmt: skip
    return LabelledImages(x, np.asarray(ds.labels, np.int64), list(ds.ids),
                          np.asarray(ds.subjects, dtype=object),
                          np.asarray(ds.split, dtype=object), spec)  # fmt: skip


def split_indices(
    labels: NDArray[np.int64],
    subjects: NDArray[np.object_] | None,
    fractions: Sequence[float],
    seed: int = 0,
) -> list[NDArray[np.int64]]:
    """Split ``range(N)`` into parts of the given ``fractions`` (summing to 1). With subject
    ids (none empty) the split is subject-independent: each subject's images go to one part
    only (subjects shuffled, assigned until each part holds its share of images); otherwise
    a seeded stratified split."""
    from sklearn.model_selection import train_test_split

    fr = np.asarray(fractions, dtype=np.float64)
    if fr.min() <= 0 or abs(fr.sum() - 1) > 1e-9:
        raise TrainingError(f"split fractions {list(fractions)} must be > 0 and sum to 1")
    n = len(labels)
    idx = np.arange(n)
    if subjects is not None and len(subjects) == n and all(s != "" for s in subjects):
        uniq = np.array(sorted(set(subjects)), dtype=object)
        if len(uniq) < len(fr):
            raise TrainingError(
                f"{len(uniq)} subject(s) cannot be split into {len(fr)} subject-independent parts"
            )
        np.random.default_rng(seed).shuffle(uniq)
        counts = {u: int(np.sum(subjects == u)) for u in uniq}
        bounds = np.cumsum(fr)[:-1] * n
        part_of: dict[Any, int] = {}
        done, k, in_k = 0, 0, 0
        for j, u in enumerate(uniq):
            # next part when this one has its share (or the subjects left are just enough
            # to give every later part one)
            later = len(fr) - 1 - k
            if later and in_k and (done >= bounds[k] or len(uniq) - j <= later):
                k, in_k = k + 1, 0
            part_of[u] = k
            in_k += 1
            done += counts[u]
        parts = np.array([part_of[s] for s in subjects])
        return [idx[parts == k] for k in range(len(fr))]
    out, rest, rest_fr = [], idx, 1.0
    for f in fr[:-1]:
        y = labels[rest]
        per_class = np.bincount(y)
        n_take = int(round(f / rest_fr * len(rest)))
        smallest = min(n_take, len(rest) - n_take)
        # stratify when every class can be in both parts (else sklearn refuses)
        stratifiable = per_class[per_class > 0].min() >= 2 and smallest >= (per_class > 0).sum()
        strat = y if stratifiable else None
        take, rest = train_test_split(rest, train_size=f / rest_fr, random_state=seed,
                                      stratify=strat)  # fmt: skip
        out.append(np.sort(take))
        rest_fr -= f
    out.append(np.sort(rest))
    return out


def load_training_data(
    spec: str, input_size: int, channels: int = 1, *, val_fraction: float = 0.2, seed: int = 0
) -> TrainData:
    """Training and validation images from an image source spec (see :func:`load_labelled`).
    The dataset's own split is used where it has one (train and val); a set split into
    train and test only gives its validation images from the training part and leaves the
    test images out; a set without a split is split here. Splits made here are seeded and
    subject-independent where every image has a subject id (CK+ file names), else
    stratified."""
    d = load_labelled(spec, input_size, channels)
    idx = np.arange(len(d))
    if (d.split == "train").any() and (d.split == "val").any():
        tr, va = idx[d.split == "train"], idx[d.split == "val"]
    else:
        pool = idx[d.split == "train"] if (d.split == "train").any() else idx
        a, b = split_indices(d.y[pool], d.subjects[pool], (1 - val_fraction, val_fraction), seed)
        tr, va = pool[a], pool[b]
    return train_data(d.take(tr), d.take(va))


def train_data(train: LabelledImages, val: LabelledImages) -> TrainData:
    return TrainData(train.x, train.y, train.ids, val.x, val.y, val.ids, train.source)

"""FER+ : ``fer2013.csv`` pixels with ``fer2013new.csv`` crowd votes (docs/settings-and-data.md#data).

``fer2013.csv`` has columns ``emotion,pixels,Usage`` (48×48 grey pixels as a
space-separated string); ``fer2013new.csv`` has, row for row,
``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF``
(10 annotators' votes). The label is FER+'s own "majority" rule (``vote_rule="ferplus"``,
Barsoum et al. 2016 and Microsoft's FERPlus reader): single votes are dropped as outliers,
then the class with more than half of the remaining votes wins. ``vote_rule="strict"`` asks
for more than half of *all* votes instead. Rows with no image name (removed by FER+), no
clear majority (ties included), or a majority for *unknown* / *not a face* are dropped. The
original split is kept: Training -> train, PublicTest -> val, PrivateTest -> test.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.models.datasets.base import DatasetError, ImageSet, integer_field, require
from gazelab.models.datasets.registry import register_layout

VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
_VOTE_CLASS = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sadness",
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "contempt": "contempt",
}
SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


VOTE_RULES = ("ferplus", "strict")
"""Names of the vote rules :func:`majority_label` knows: ``ferplus`` (the published one,
the default) drops single votes first; ``strict`` counts every vote."""


def majority_label(votes: NDArray[np.int64], rule: str = "ferplus") -> int | None:
    """Class index of an image's majority vote, ``None`` when it is dropped.

    ``votes`` is the ``(10,)`` count per :data:`VOTE_COLUMNS`. ``rule="ferplus"`` zeroes
    every count of 1 (a lone vote is an outlier) and then needs a strict majority, more
    than half of the votes left; ``rule="strict"`` needs more than half of all votes.
    A tie, no votes left, or a majority for *unknown* / *NF* give ``None``.
    """
    if rule not in VOTE_RULES:
        raise DatasetError(f"unknown FER+ vote rule {rule!r}; choose one of {list(VOTE_RULES)}")
    counts = np.asarray(votes, dtype=np.int64)
    if rule == "ferplus":
        counts = np.where(counts <= 1, 0, counts)
    total = int(counts.sum())
    if total == 0:
        return None
    top = int(np.argmax(counts))
    if counts[top] * 2 <= total or VOTE_COLUMNS[top] in ("unknown", "NF"):
        return None
    return CLASSES.index(_VOTE_CLASS[VOTE_COLUMNS[top]])


MAX_VOTES = 1000
"""Upper bound of one vote count (FER+ has 10 annotators per image)."""


def _pixels(text: str | None, where: str) -> NDArray[np.uint8]:
    """A row's space-separated grey values, each a whole number 0-255 (parsing straight to
    uint8 would wrap 256 to 0 and -1 to 255 without a word)."""
    values = (text or "").split()
    try:
        px = np.array(values, dtype=np.int64)
    except (ValueError, OverflowError) as exc:
        raise DatasetError(f"{where}: pixels must be integers 0-255 ({exc})") from exc
    bad = np.flatnonzero((px < 0) | (px > 255))
    if bad.size:
        raise DatasetError(
            f"{where}: pixel value {int(px[bad[0]])} (value {int(bad[0]) + 1}) is outside 0-255"
        )
    return px.astype(np.uint8)


def _csv_rows(path: Path, columns: set[str] | None = None) -> list[dict[str, str]]:
    """Every row of a CSV file; ``columns`` must be in its header. A row Python's csv reader
    refuses (a field over its 128 KiB limit, a NUL byte) is a :class:`DatasetError` naming
    the line, not a ``_csv.Error`` traceback."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        try:
            missing = (columns or set()) - set(reader.fieldnames or [])
            if missing:
                raise DatasetError(f"{path}: missing column(s) {sorted(missing)}")
            return list(reader)
        except csv.Error as exc:
            raise DatasetError(
                f"{path} line {reader.line_num + 1}: not a row of a FER+ CSV file ({exc}); a "
                "row's pixel field is 2304 numbers (about 9 KB)"
            ) from None


@register_layout(
    "fer+",
    aliases=("ferplus",),
    about="a folder with fer2013.csv and fer2013new.csv (FER+ crowd votes)",
)
def load_ferplus(
    root: str | Path, *, max_pixels: int | None = None, vote_rule: str = "ferplus"
) -> ImageSet:
    """Load FER+ from a folder holding ``fer2013.csv`` and ``fer2013new.csv``, labelled by
    ``vote_rule`` (one of :data:`VOTE_RULES`; ``max_pixels`` is accepted like every
    loader's; FER+ images are 48×48 arrays)."""
    if vote_rule not in VOTE_RULES:
        raise DatasetError(
            f"unknown FER+ vote rule {vote_rule!r}; choose one of {list(VOTE_RULES)}"
        )
    root = Path(root)
    pix_path = require(root / "fer2013.csv", "FER2013 pixel file 'fer2013.csv'")
    new_path = require(root / "fer2013new.csv", "FER+ vote file 'fer2013new.csv'")
    pix_rows = _csv_rows(pix_path)
    vote_rows = _csv_rows(new_path, {"Usage", "Image name", *VOTE_COLUMNS})
    if pix_rows and not {"pixels", "Usage"} <= set(pix_rows[0]):
        raise DatasetError(f"{pix_path}: expected columns 'emotion,pixels,Usage'")
    if len(pix_rows) != len(vote_rows):
        raise DatasetError(
            f"{new_path} has {len(vote_rows)} rows but {pix_path} has {len(pix_rows)}; "
            "they must correspond row for row"
        )

    ids: list[str] = []
    labels: list[int] = []
    split: list[str] = []
    images: list[NDArray[np.uint8]] = []
    for row_no, (prow, vrow) in enumerate(zip(pix_rows, vote_rows, strict=True), start=2):
        name = (vrow["Image name"] or "").strip()
        if not name:
            continue
        votes = np.array(
            [integer_field(vrow[c] or "0", 0, MAX_VOTES, f"{new_path} line {row_no}",
                           f"vote count {c!r}") for c in VOTE_COLUMNS],
            dtype=np.int64,
        )  # fmt: skip
        lab = majority_label(votes, vote_rule)
        if lab is None:
            continue
        usage = (vrow["Usage"] or "").strip()
        if usage not in SPLITS:
            raise DatasetError(
                f"{new_path} line {row_no}: Usage {usage!r} is not one of {sorted(SPLITS)}"
            )
        px = _pixels(prow["pixels"], f"{pix_path} line {row_no}")
        if px.size != 48 * 48:
            raise DatasetError(
                f"{pix_path} line {row_no}: {px.size} pixel values, expected 2304 (48×48)"
            )
        ids.append(f"{SPLITS[usage]}/{name}")
        labels.append(lab)
        split.append(SPLITS[usage])
        images.append(px.reshape(48, 48))
    return ImageSet(
        name="fer+",
        ids=ids,
        labels=np.array(labels, dtype=np.int64),
        split=np.array(split, dtype=object),
        loader=lambda i: images[i],
    )

"""AffectNet manually annotated part (docs/settings-and-data.md#data).

::

    ROOT/Manually_Annotated_file_lists/training.csv    (or ROOT/training.csv)
    ROOT/Manually_Annotated_file_lists/validation.csv
    ROOT/Manually_Annotated_Images/<subDirectory_filePath>

CSV columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks, expression, valence, arousal``. Expression codes: 0 Neutral,
1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt, 8 None,
9 Uncertain, 10 Non-Face; 8–10 are dropped. Exact duplicate images (same file
content) are kept once, the first seen. training -> train, validation -> val.
Rows naming a path outside ``Manually_Annotated_Images`` (``../x.png``, ``/dev/zero``, a
link out of it) are skipped without being read, each with its reason in
``ImageSet.skipped`` and one warning line.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path, PurePath

import numpy as np

from gazelab import CLASSES
from gazelab.models.datasets.base import (
    DatasetError,
    ImageSet,
    inside_root,
    integer_field,
    read_image,
    skipped_note,
)
from gazelab.models.datasets.registry import register_layout

CODE_CLASS = {
    0: "neutral",
    1: "happy",
    2: "sadness",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "anger",
    7: "contempt",
}
DROPPED_CODES = {8: "none", 9: "uncertain", 10: "non-face"}


def _find_list(root: Path, name: str) -> Path:
    for cand in (root / "Manually_Annotated_file_lists" / name, root / name):
        if cand.is_file():
            return cand
    raise DatasetError(
        f"AffectNet list {name!r} not found in {root}/Manually_Annotated_file_lists/ or {root}/"
    )


@register_layout(
    "affectnet",
    about="AffectNet's manually annotated part (file lists + Manually_Annotated_Images/)",
)
def load_affectnet(
    root: str | Path, *, crop_faces: bool = False, max_pixels: int | None = None
) -> ImageSet:
    """Load AffectNet's manual annotations; ``crop_faces`` crops to the annotated face box;
    ``max_pixels`` is :func:`~gazelab.models.datasets.base.read_image`'s limit."""
    root = Path(root)
    images_dir = root / "Manually_Annotated_Images"
    if not images_dir.is_dir():
        raise DatasetError(f"AffectNet image folder not found: {images_dir}")
    ids: list[str] = []
    labels: list[int] = []
    split: list[str] = []
    paths: list[Path] = []
    boxes: list[tuple[int, int, int, int] | None] = []
    seen: set[str] = set()
    skipped: list[str] = []
    for list_name, split_name in (("training.csv", "train"), ("validation.csv", "val")):
        list_path = _find_list(root, list_name)
        with list_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"subDirectory_filePath", "expression"}
            if not need <= set(reader.fieldnames or []):
                raise DatasetError(
                    f"{list_path}: missing column(s) {sorted(need - set(reader.fieldnames or []))}"
                )
            for line_no, row in enumerate(reader, start=2):
                where = f"{list_path} line {line_no}"
                code = integer_field(row["expression"], 0, 10, where, "expression code")
                if code in DROPPED_CODES:
                    continue
                rel = (row["subDirectory_filePath"] or "").strip()
                path = images_dir / rel
                resolved = inside_root(images_dir, path)
                if resolved is None:
                    escapes = PurePath(rel).is_absolute() or ".." in PurePath(rel).parts
                    if not escapes and not path.exists():
                        raise DatasetError(f"{where}: image {path} is missing")
                    skipped.append(
                        f"{where}: {rel!r} is outside {images_dir} or not a regular file"
                    )
                    continue
                with open(resolved, "rb") as image_file:  # streamed, never held whole
                    digest = hashlib.file_digest(image_file, "sha1").hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                box = None
                if crop_faces and row.get("face_width"):
                    x, y, w, h = (
                        integer_field(row.get(k), lo, 10**6, where, k)
                        for k, lo in (("face_x", -(10**6)), ("face_y", -(10**6)),
                                      ("face_width", 1), ("face_height", 1))
                    )  # fmt: skip
                    box = (x, y, w, h)
                ids.append(rel)
                labels.append(CLASSES.index(CODE_CLASS[code]))
                split.append(split_name)
                paths.append(resolved)
                boxes.append(box)
    skipped_note("affectnet", skipped)

    def load(i: int) -> np.ndarray:
        img = read_image(paths[i], max_pixels=max_pixels)
        if boxes[i] is not None:
            x, y, w, h = boxes[i]  # type: ignore[misc]
            img = img[max(y, 0) : y + h, max(x, 0) : x + w]
        return img

    return ImageSet(
        name="affectnet",
        ids=ids,
        labels=np.array(labels, dtype=np.int64),
        split=np.array(split, dtype=object),
        loader=load,
        skipped=skipped,
    )

"""CK+ in its distributed layout (docs/settings-and-data.md#data).

::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ... _00000011.png
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt     "   3.0000000e+00"

Each labelled sequence gives its last frame with the emotion code of its
``*_emotion.txt`` and its first frame as ``neutral``: 327 sequences -> 654
images in 8 classes (contempt included). Codes: 0 neutral, 1 anger, 2 contempt,
3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise — the order of
:data:`gazelab.CLASSES`. ``Emotion`` may also sit under ``Emotion_labels/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gazelab import CLASSES
from gazelab.models.datasets.base import (
    DatasetError,
    ImageSet,
    inside_root,
    integer_field,
    read_image,
    require,
    skipped_note,
)
from gazelab.models.datasets.registry import register_layout

_FRAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)
LABEL_MAX_BYTES = 4096
"""A CK+ label file holds one number; more is not a label file (nor read into memory)."""


def _label_code(lf: Path) -> int:
    """The emotion code of a ``*_emotion.txt``: one whole number 0-7 (``3.0000000e+00``)."""
    with lf.open("rb") as fh:
        data = fh.read(LABEL_MAX_BYTES + 1)
    if len(data) > LABEL_MAX_BYTES:
        raise DatasetError(f"{lf}: over {LABEL_MAX_BYTES} bytes; a CK+ label file holds one code")
    lines = data.decode("utf-8", errors="replace").splitlines()
    filled = [(no, line) for no, line in enumerate(lines, start=1) if line.strip()]
    if len(filled) != 1 or len(filled[0][1].split()) != 1:
        raise DatasetError(f"{lf}: expected one emotion code 0-7, found {data[:80]!r}")
    line_no, text = filled[0]
    return integer_field(text, 0, len(CLASSES) - 1, f"{lf} line {line_no}", "emotion code")


@register_layout(
    "ck+",
    aliases=("ckplus",),
    about="a CK+ root (cohn-kanade-images/, Emotion/): last frame labelled, first neutral",
)
def load_ckplus(
    root: str | Path, *, last_frames: int = 1, max_pixels: int | None = None
) -> ImageSet:
    """Load CK+: the last ``last_frames`` frames of each labelled sequence + its first frame.

    Files reached through links out of the root are skipped (``ImageSet.skipped``);
    ``max_pixels`` is :func:`~gazelab.models.datasets.base.read_image`'s limit."""
    root = Path(root)
    images_dir = require(root / "cohn-kanade-images", "CK+ image folder 'cohn-kanade-images'")
    emotion_dir = root / "Emotion"
    if not emotion_dir.is_dir() and (root / "Emotion_labels" / "Emotion").is_dir():
        emotion_dir = root / "Emotion_labels" / "Emotion"
    require(emotion_dir, "CK+ label folder 'Emotion'")

    ids: list[str] = []
    labels: list[int] = []
    subjects: list[str] = []
    paths: list[Path] = []
    label_files = sorted(emotion_dir.glob("S*/*/*_emotion.txt"))
    if not label_files:
        raise DatasetError(
            f"no '*_emotion.txt' files under {emotion_dir}/Sxxx/yyy/; is this the CK+ root?"
        )
    skipped: list[str] = []
    for lf in label_files:
        subject, sequence = lf.parent.parent.name, lf.parent.name
        if inside_root(root, lf) is None:
            skipped.append(f"{lf}: outside {root} or not a regular file")
            continue
        code = _label_code(lf)
        seq_dir = images_dir / subject / sequence
        frames = []
        for f in seq_dir.glob("*.png"):
            if not _FRAME.match(f.name):
                continue
            if inside_root(root, f) is None:
                skipped.append(f"{f}: outside {root} or not a regular file")
                continue
            frames.append(f)
        frames.sort(key=lambda p: int(_FRAME.match(p.name).group(3)))  # type: ignore[union-attr]
        if len(frames) < 2:
            raise DatasetError(
                f"sequence {seq_dir} has {len(frames)} frame(s); a labelled CK+ sequence needs "
                "its frames 'Sxxx_yyy_NNNNNNNN.png'"
            )
        picks = [(frames[0], 0)] + [(f, code) for f in frames[-last_frames:]]
        for path, lab in picks:
            ids.append(f"{subject}/{sequence}/{path.name}")
            labels.append(lab)
            subjects.append(subject)
            paths.append(path)
    skipped_note("ck+", skipped)
    return ImageSet(
        name="ck+",
        ids=ids,
        labels=np.array(labels, dtype=np.int64),
        split=np.array(["all"] * len(ids), dtype=object),
        loader=lambda i: read_image(paths[i], max_pixels=max_pixels),
        subjects=np.array(subjects, dtype=object),
        skipped=skipped,
    )

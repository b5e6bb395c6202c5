"""CK+ in its distributed layout (SPEC §8).

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
from gazelab.models.datasets.base import DatasetError, ImageSet, read_image, require

_FRAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)


def load_ckplus(root: str | Path, *, last_frames: int = 1) -> ImageSet:
    """Load CK+: the last ``last_frames`` frames of each labelled sequence + its first frame."""
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
    for lf in label_files:
        subject, sequence = lf.parent.parent.name, lf.parent.name
        text = lf.read_text(encoding="utf-8", errors="replace").strip()
        try:
            code = int(float(text))
        except ValueError as exc:
            raise DatasetError(f"{lf}: expected one emotion code 0-7, found {text!r}") from exc
        if not 0 <= code < len(CLASSES):
            raise DatasetError(f"{lf}: emotion code {code} is outside 0-7")
        seq_dir = images_dir / subject / sequence
        frames = sorted(
            (p for p in seq_dir.glob("*.png") if _FRAME.match(p.name)),
            key=lambda p: int(_FRAME.match(p.name).group(3)),  # type: ignore[union-attr]
        )
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
    return ImageSet(
        name="ck+",
        ids=ids,
        labels=np.array(labels, dtype=np.int64),
        split=np.array(["all"] * len(ids), dtype=object),
        loader=lambda i: read_image(paths[i]),
        subjects=np.array(subjects, dtype=object),
    )

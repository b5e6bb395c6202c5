"""Dataset loaders on tiny fixtures written in each dataset's real layout."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from gazelab import CLASSES
from gazelab.models.datasets.base import DatasetError
from gazelab.models.datasets.library import load_dataset


def _png(path, value, size=(8, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)


def write_ckplus(root, sequences):
    """sequences: {(subject, seq): (n_frames, code or None)}"""
    for (subj, seq), (n, code) in sequences.items():
        for k in range(1, n + 1):
            _png(root / "cohn-kanade-images" / subj / seq / f"{subj}_{seq}_{k:08d}.png", k)
        if code is not None:
            lab = root / "Emotion" / subj / seq / f"{subj}_{seq}_{n:08d}_emotion.txt"
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text(f"   {code:.7e}\n")


def test_ckplus_last_frame_labelled_first_frame_neutral(tmp_path):
    write_ckplus(
        tmp_path, {("S005", "001"): (11, 3), ("S010", "002"): (5, 7), ("S010", "003"): (4, None)}
    )  # unlabelled sequence is skipped
    ds = load_dataset("ck+", tmp_path)
    assert len(ds) == 4
    assert [CLASSES[i] for i in ds.labels] == ["neutral", "disgust", "neutral", "surprise"]
    assert ds.ids[1] == "S005/001/S005_001_00000011.png"
    assert ds.image(1)[0, 0] == 11 and ds.image(0)[0, 0] == 1  # last and first frames
    assert list(ds.subjects) == ["S005", "S005", "S010", "S010"]


def test_ckplus_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="cohn-kanade-images"):
        load_dataset("ck+", tmp_path)
    write_ckplus(tmp_path, {("S005", "001"): (3, 3)})
    bad = tmp_path / "Emotion" / "S005" / "001" / "S005_001_00000003_emotion.txt"
    bad.write_text("happy")
    with pytest.raises(DatasetError, match="S005_001_00000003_emotion.txt"):
        load_dataset("ck+", tmp_path)


VOTE_HEADER = [
    "Usage",
    "Image name",
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
]


def write_ferplus(root, rows):
    """rows: (usage, name, votes[10], pixel value)"""
    with open(root / "fer2013.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for usage, _, _, value in rows:
            w.writerow([0, " ".join([str(value)] * 2304), usage])
    with open(root / "fer2013new.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(VOTE_HEADER)
        for usage, name, votes, _ in rows:
            w.writerow([usage, name, *votes])


def test_ferplus_majority_vote_and_split(tmp_path):
    write_ferplus(
        tmp_path,
        [
            ("Training", "fer0000000.png", [0, 8, 0, 0, 0, 0, 0, 0, 2, 0], 10),  # happy
            ("Training", "fer0000001.png", [5, 5, 0, 0, 0, 0, 0, 0, 0, 0], 20),  # tie: dropped
            ("Training", "", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0], 30),  # removed by FER+
            ("PublicTest", "fer0000003.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], 40),  # not a face
            ("PublicTest", "fer0000004.png", [1, 0, 0, 0, 0, 0, 0, 9, 0, 0], 50),  # contempt
            ("PrivateTest", "fer0000005.png", [0, 0, 0, 6, 0, 0, 0, 0, 4, 0], 60),  # sadness
            ("PrivateTest", "fer0000006.png", [0, 0, 0, 0, 0, 0, 0, 0, 9, 1], 70),  # unknown
        ],
    )
    ds = load_dataset("fer+", tmp_path)
    assert [CLASSES[i] for i in ds.labels] == ["happy", "contempt", "sadness"]
    assert list(ds.split) == ["train", "val", "test"]
    assert ds.image(1).shape == (48, 48) and ds.image(1)[0, 0] == 50


def test_ferplus_malformed_pixels_name_the_line(tmp_path):
    write_ferplus(tmp_path, [("Training", "fer0.png", [0, 9, 0, 0, 0, 0, 0, 0, 1, 0], 1)])
    text = (tmp_path / "fer2013.csv").read_text().replace(" 1 1 1", " 1 1", 1)
    (tmp_path / "fer2013.csv").write_text(text)
    with pytest.raises(DatasetError, match=r"fer2013.csv line 2: 2303 pixel values"):
        load_dataset("fer+", tmp_path)


def write_affectnet(root, rows):
    """rows: (list name, relpath, code, pixel value)"""
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    header = [
        "subDirectory_filePath",
        "face_x",
        "face_y",
        "face_width",
        "face_height",
        "facial_landmarks",
        "expression",
        "valence",
        "arousal",
    ]
    by_list: dict[str, list] = {"training.csv": [], "validation.csv": []}
    for name, rel, code, value in rows:
        _png(root / "Manually_Annotated_Images" / rel, value)
        by_list[name].append([rel, 0, 0, 6, 6, "", code, 0.1, 0.2])
    for name, body in by_list.items():
        with open(lists / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(body)


def test_affectnet_drops_codes_and_duplicates(tmp_path):
    write_affectnet(
        tmp_path,
        [
            ("training.csv", "1/a.jpg", 1, 10),  # happy
            ("training.csv", "1/b.jpg", 8, 11),  # none: dropped
            ("training.csv", "2/c.jpg", 9, 12),  # uncertain: dropped
            ("training.csv", "2/d.jpg", 10, 13),  # non-face: dropped
            ("training.csv", "3/e.jpg", 6, 10),  # same content as a.jpg: duplicate, dropped
            ("validation.csv", "4/f.jpg", 7, 14),  # contempt
        ],
    )
    ds = load_dataset("affectnet", tmp_path)
    assert ds.ids == ["1/a.jpg", "4/f.jpg"]
    assert [CLASSES[i] for i in ds.labels] == ["happy", "contempt"]
    assert list(ds.split) == ["train", "val"]


def test_affectnet_missing_image_names_it(tmp_path):
    write_affectnet(
        tmp_path, [("training.csv", "1/a.jpg", 1, 10), ("validation.csv", "4/f.jpg", 7, 14)]
    )
    (tmp_path / "Manually_Annotated_Images" / "4" / "f.jpg").unlink()
    with pytest.raises(DatasetError, match=r"validation.csv line 2: image .*f.jpg is missing"):
        load_dataset("affectnet", tmp_path)


def test_folder_per_class_with_synonyms(tmp_path):
    _png(tmp_path / "happiness" / "1.png", 1)
    _png(tmp_path / "angry" / "2.png", 2)
    _png(tmp_path / "angry" / "3.jpg", 3)
    (tmp_path / "angry" / "notes.txt").write_text("ignored")
    ds = load_dataset("folder", tmp_path)
    assert ds.class_counts()["anger"] == 2 and ds.class_counts()["happy"] == 1
    assert len(ds) == 3


def test_folder_unknown_class_is_an_error(tmp_path):
    _png(tmp_path / "bored" / "1.png", 1)
    with pytest.raises(DatasetError, match="bored.*does not name a class"):
        load_dataset("folder", tmp_path)


def test_unknown_layout():
    with pytest.raises(DatasetError, match="unknown dataset layout"):
        load_dataset("imagenet", ".")

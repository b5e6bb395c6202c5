"""``folder:`` layouts in the forms real face sets are published in: CK+ 48×48 crops in
class folders (subjects in the file names, no neutral), FER2013 as JPG folders
(train / validation / test, no contempt) and FER2013's own split names; subject-independent
splits. Fixtures are written here in those forms (names and formats copied from the public
sets); ``GAZELAB_FACE_DATA`` pointing at a folder holding ``CK+48/`` and ``fer2013/`` also
checks the published sets themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gazelab import CLASSES
from gazelab.models.datasets.base import DatasetError
from gazelab.models.datasets.registry import open_image_set
from gazelab.models.training import load_training_data, split_indices

CK48_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
FER_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def _img(path: Path, value: int, suffix_format: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path, format=suffix_format)


def write_ck48(root: Path, subjects: int = 6) -> Path:
    """CK+48 as published: ``CK+48/<class>/S###_###_########.png``, the last three frames of
    each sequence, 48×48 grey; subject k posed every (k + class) % 2 == 0 class."""
    base = root / "CK+48"
    for k in range(subjects):
        subj = f"S{10 + k * 7:03d}"
        for c, cls in enumerate(CK48_CLASSES):
            if (k + c) % 2:
                continue
            seq = f"{c + 1:03d}"
            for frame in (14, 15, 16):
                _img(base / cls / f"{subj}_{seq}_{frame:08d}.png", 100 * k + 10 * c + frame)
    return base


def write_fer_jpg(root: Path, splits: tuple[str, ...] = ("train", "validation", "test"),
                  per_class: int = 3) -> Path:  # fmt: skip
    """FER2013 as JPG folders: ``<split>/<class>/<Usage>_<id>.jpg``, 48×48 grey."""
    usage = {"train": "Training", "validation": "PublicTest", "test": "PrivateTest",
             "Training": "Training", "PublicTest": "PublicTest", "PrivateTest": "PrivateTest"}  # fmt: skip
    base = root / "fer2013"
    for s, split in enumerate(splits):
        for c, cls in enumerate(FER_CLASSES):
            for i in range(per_class):
                ident = 1000 * s + 10 * c + i
                _img(base / split / cls / f"{usage[split]}_{ident}.jpg", ident, "JPEG")
    return base


def test_ck48_crops_load_with_subjects_and_no_neutral(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = write_ck48(tmp_path)
    (base / ".git").mkdir()  # a hidden folder (a repository's) is passed over
    ds = open_image_set(f"folder:{base}")
    counts = ds.class_counts()
    assert counts["neutral"] == 0 and counts["contempt"] == 3 * 3  # subjects 1, 3, 5
    assert len(ds) == 3 * (3 * 4 + 3 * 3)  # 3 frames of 21 sequences (every second pair)
    assert set(ds.split) == {"all"}
    assert sorted(set(ds.subjects)) == ["S010", "S017", "S024", "S031", "S038", "S045"]
    i = ds.ids.index("anger/S010_001_00000014.png")
    assert ds.subjects[i] == "S010" and ds.label(i) == CLASSES.index("anger")
    assert ds.image(i).shape == (48, 48) and ds.image(i).dtype == np.uint8


def test_ck48_split_is_subject_independent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = write_ck48(tmp_path, subjects=10)
    ds = open_image_set(f"folder:{base}")
    y = np.asarray(ds.labels)
    for seed in range(5):
        tr, va = split_indices(y, ds.subjects, (0.8, 0.2), seed)
        assert len(tr) + len(va) == len(ds) and len(va) > 0
        assert not set(ds.subjects[tr]) & set(ds.subjects[va])
    # the training loader makes the same subject-independent split
    data = load_training_data(f"folder:{base}", 24, val_fraction=0.2, seed=1)
    subj = {iid: s for iid, s in zip(ds.ids, ds.subjects, strict=True)}
    assert not {subj[i] for i in data.ids_train} & {subj[i] for i in data.ids_val}
    assert data.x_train.shape[1:] == (24, 24, 1)
    # without subjects (pattern switched off) frames of one sequence land on both sides
    flat = open_image_set(f"folder:{base}", subject_pattern="")
    assert set(flat.subjects) == {""}
    tr, va = split_indices(y, flat.subjects, (0.8, 0.2), 0)
    seqs = lambda idx: {ds.ids[i].split("/")[1][:8] for i in idx}  # noqa: E731
    assert seqs(tr) & seqs(va)  # the leak the subject ids prevent


def test_subject_pattern_of_ones_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _img(tmp_path / "happy" / "p07-take2.png", 1)
    _img(tmp_path / "sad" / "p07-take3.png", 2)
    _img(tmp_path / "sad" / "p11-take1.png", 3)
    ds = open_image_set(f"folder:{tmp_path}", subject_pattern=r"^p\d+")
    assert list(ds.subjects) == ["p07", "p07", "p11"]
    assert list(open_image_set(f"folder:{tmp_path}").subjects) == ["", "", ""]  # not CK+ names
    with pytest.raises(DatasetError, match=r"subject_pattern '\(p' is not a regular expression"):
        open_image_set(f"folder:{tmp_path}", subject_pattern="(p")


def test_fer2013_jpg_folders_keep_their_splits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = write_fer_jpg(tmp_path)
    ds = open_image_set(f"folder:{base}")
    assert len(ds) == 3 * 7 * 3
    assert {s: int(np.sum(ds.split == s)) for s in ("train", "val", "test")} == {
        "train": 21, "val": 21, "test": 21}  # fmt: skip
    assert ds.class_counts()["contempt"] == 0 and ds.class_counts()["anger"] == 9
    i = ds.ids.index("validation/angry/PublicTest_1000.jpg")
    assert ds.split[i] == "val" and ds.label(i) == CLASSES.index("anger")
    assert ds.image(i).shape == (48, 48)
    data = load_training_data(f"folder:{base}", 48)
    assert len(data.ids_train) == 21 and len(data.ids_val) == 21
    assert all(i.startswith("train/") for i in data.ids_train)
    assert all(i.startswith("validation/") for i in data.ids_val)


def test_fer2013_usage_names_as_split_folders(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = write_fer_jpg(tmp_path, ("Training", "PublicTest", "PrivateTest"), per_class=2)
    ds = open_image_set(f"folder:{base}")
    by = {s: {ds.ids[i].split("/")[0] for i in np.nonzero(ds.split == s)[0]}
          for s in ("train", "val", "test")}  # fmt: skip
    assert by == {"train": {"Training"}, "val": {"PublicTest"}, "test": {"PrivateTest"}}


def test_train_and_test_only_validates_on_part_of_train(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = write_fer_jpg(tmp_path, ("train", "test"), per_class=5)
    data = load_training_data(f"folder:{base}", 48, val_fraction=0.2, seed=0)
    ids = data.ids_train + data.ids_val
    assert len(ids) == 35 and len(set(ids)) == 35  # the 35 test images are left out
    assert all(i.startswith("train/") for i in ids)
    assert len(data.ids_val) == 7 and len(set(data.y_val.tolist())) == 7  # stratified


def test_split_folders_mixed_with_class_folders_name_the_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _img(tmp_path / "train" / "happy" / "a.png", 1)
    _img(tmp_path / "extras" / "b.png", 2)
    with pytest.raises(DatasetError, match="extras does not name a class.*split folders"):
        open_image_set(f"folder:{tmp_path}")


REAL = os.environ.get("GAZELAB_FACE_DATA", "")


@pytest.mark.skipif(not (REAL and (Path(REAL) / "CK+48").is_dir()),
                    reason="GAZELAB_FACE_DATA with CK+48/ not given")  # fmt: skip
def test_published_ck48_loads_as_it_is() -> None:
    ds = open_image_set(f"folder:{Path(REAL) / 'CK+48'}")
    assert len(ds) == 981 and len(set(ds.subjects)) == 118 and "" not in set(ds.subjects)
    assert ds.class_counts()["neutral"] == 0 and ds.class_counts()["surprise"] == 249


@pytest.mark.skipif(not (REAL and (Path(REAL) / "fer2013").is_dir()),
                    reason="GAZELAB_FACE_DATA with fer2013/ not given")  # fmt: skip
def test_published_fer2013_jpg_folders_load_as_they_are() -> None:
    ds = open_image_set(f"folder:{Path(REAL) / 'fer2013'}")
    assert len(ds) == 35887 and ds.class_counts()["contempt"] == 0
    assert {s: int(np.sum(ds.split == s)) for s in ("train", "val", "test")} == {
        "train": 28709, "val": 3589, "test": 3589}  # fmt: skip

"""Datasets and images are untrusted input: no path escapes the
dataset root or the output folder, no image is decoded past the pixel limit, no label
value is silently truncated or wrapped, and mask export streams. Fixtures are written in
each dataset's real layout."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from gazelab.fileio import safe_filename
from gazelab.models.datasets.base import DatasetError, DatasetWarning, ImageSet, read_image
from gazelab.models.datasets.library import load_dataset

AFFECTNET_HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                    "facial_landmarks", "expression", "valence", "arousal"]  # fmt: skip


def _png(path: Path, value: int, size: tuple[int, int] = (8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)


def _affectnet(root: Path, rows: list[tuple[str, int | str]], images: list[str]) -> None:
    """training.csv with ``rows`` (path, expression); an empty validation.csv."""
    for k, rel in enumerate(images):
        _png(root / "Manually_Annotated_Images" / rel, 10 + k)
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    for name, body in (("training.csv", rows), ("validation.csv", [])):
        with open(lists / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(AFFECTNET_HEADER)
            w.writerows([rel, 0, 0, 6, 6, "", code, 0.1, 0.2] for rel, code in body)


# -- item 2: paths stay inside the dataset root ---------------------------------------------
def test_affectnet_rows_outside_the_root_are_skipped_without_reading(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "affectnet"
    _png(root / "x.png", 99)  # exists, beside the image folder: "../x.png" would reach it
    _affectnet(root, [("1/a.jpg", 1), ("../x.png", 1), ("/dev/zero", 2), ("1/b.jpg", 3)],
               ["1/a.jpg", "1/b.jpg"])  # fmt: skip
    import hashlib

    opened: list[str] = []  # every image file the loader reads (to find duplicates)
    real_digest = hashlib.file_digest

    def spy(fh, digest):  # type: ignore[no-untyped-def]
        opened.append(fh.name)
        return real_digest(fh, digest)

    monkeypatch.setattr(hashlib, "file_digest", spy)
    with pytest.warns(DatasetWarning, match="skipped 2 row"):
        ds = load_dataset("affectnet", root)
    assert ds.ids == ["1/a.jpg", "1/b.jpg"]
    assert len(ds.skipped) == 2
    assert "training.csv line 3" in ds.skipped[0] and "'../x.png'" in ds.skipped[0]
    assert "training.csv line 4" in ds.skipped[1] and "'/dev/zero'" in ds.skipped[1]
    assert [Path(p).name for p in opened] == ["a.jpg", "b.jpg"]


def test_links_out_of_the_root_are_skipped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "secret.png"
    _png(outside, 7)
    root = tmp_path / "faces"
    _png(root / "happy" / "1.png", 1)
    (root / "happy" / "2.png").symlink_to(outside)
    (root / "sad").mkdir()
    (root / "sad" / "3.png").symlink_to("/dev/zero")
    with pytest.warns(DatasetWarning):
        ds = load_dataset("folder", root)
    assert ds.ids == ["happy/1.png"] and len(ds.skipped) == 2


@pytest.mark.parametrize(
    "image_id", ["../x", "../../etc/passwd", "/abs/x", "a/b/c.png", "..", ".", "", "a\\b",
                 "x" * 400, "é/ü", "S005/001/S005_001_00000011.png"],
)  # fmt: skip
def test_names_from_ids_stay_inside_the_output_folder(tmp_path, image_id) -> None:  # type: ignore[no-untyped-def]
    name = safe_filename(image_id)
    png = tmp_path / f"{name}_deep_taylor.png"
    assert png.resolve().parent == tmp_path.resolve() and "/" not in name
    assert len(png.name.encode()) < 255
    png.write_bytes(b"")  # writable as a plain file in the folder


def test_names_from_ids_stay_unique() -> None:
    ids = ["a/b", "a__b", "a_b", "a?b", "a*b", "a\\b", "../a_b", "a/b/", "A/b"]
    names = [safe_filename(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert safe_filename("img_001.png") == "img_001.png"  # plain ids keep their names


# -- item 3: decompression bombs ------------------------------------------------------------
@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A 49-megapixel PNG (7000×7000, 1 bit, zeros) in a few kilobytes: over the 40 MP
    default, under PIL's own 89 MP limit (PIL would decode it)."""
    path = tmp_path_factory.mktemp("bomb") / "happy" / "bomb.png"
    path.parent.mkdir()
    Image.new("1", (7000, 7000)).save(path)
    assert path.stat().st_size < 100_000
    return path


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(bomb, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_decoding(self):  # type: ignore[no-untyped-def]
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(DatasetError) as err:
        read_image(bomb)
    msg = str(err.value)
    assert str(bomb) in msg and "7000×7000" in msg and "stimulus.max_image_megapixels" in msg
    ds = load_dataset("folder", bomb.parent.parent)  # every loader decodes through it
    with pytest.raises(DatasetError, match="over the limit of 40 megapixels"):
        ds.image(0)


def test_an_image_over_pils_own_limit_is_a_dataset_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(path)  # 400 MP: PIL refuses at open
    with pytest.raises(DatasetError, match="huge.png"):
        read_image(path, max_pixels=10**12)


def test_the_pixel_limit_is_a_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gazelab.settings import Settings

    _png(tmp_path / "a.png", 5, (100, 100))
    assert Settings().stimulus.max_image_megapixels == 40.0
    assert read_image(tmp_path / "a.png").shape == (100, 100)
    with pytest.raises(DatasetError, match="100×100"):
        read_image(tmp_path / "a.png", max_pixels=5000)


def test_mask_export_holds_one_batch_of_images(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Traced peak memory of an image-set export does not grow with the number of images:
    the decoded (256×256 RGB) images pass one at a time, only bit-packed masks are kept."""
    from gazelab.models.export import export_masks, image_set_jobs
    from gazelab.settings import Settings

    def images(n: int) -> ImageSet:
        rng = np.random.default_rng(0)
        return ImageSet(
            name="big", ids=[f"cls/img{i}.png" for i in range(n)],
            labels=np.zeros(n, np.int64), split=np.array(["all"] * n, dtype=object),
            loader=lambda i: rng.integers(0, 255, (256, 256, 3), dtype=np.uint8),
        )  # fmt: skip

    def peak(n: int) -> int:
        jobs = image_set_jobs(images(n), "mean", lambda idx, x: x.mean(-1),
                              settings=Settings(), n=5, input_shape=(32, 32, 3), batch=4)  # fmt: skip
        tracemalloc.start()
        export_masks(jobs, tmp_path / f"n{n}", request={"n": n}, total=n)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    small, large = peak(8), peak(48)
    one_image = 256 * 256 * 3
    # holding the 40 extra images would add 40 × 196 KB = 7.9 MB
    assert large - small < 3 * one_image, (small, large)
    assert len(list((tmp_path / "n48" / "masks").glob("*.png"))) == 48


# -- item 14: label values ------------------------------------------------------------------
def _ckplus(root: Path, label: str) -> Path:
    for k in (1, 2, 3):
        _png(root / "cohn-kanade-images" / "S005" / "001" / f"S005_001_{k:08d}.png", k)
    lab = root / "Emotion" / "S005" / "001" / "S005_001_00000003_emotion.txt"
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_text(f"   {label}\n")
    return lab


@pytest.mark.parametrize("label", ["3.7", "inf", "1e400", "nan", "-1", "8", "1e18"])
def test_ckplus_label_not_a_whole_code_is_refused(tmp_path, label) -> None:  # type: ignore[no-untyped-def]
    _ckplus(tmp_path, label)
    with pytest.raises(DatasetError, match=r"S005_001_00000003_emotion.txt line 1: emotion code"):
        load_dataset("ck+", tmp_path)


def test_ckplus_label_as_written_by_ckplus_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _ckplus(tmp_path, "3.0000000e+00")
    assert list(load_dataset("ck+", tmp_path).labels) == [0, 3]


def _ferplus(root: Path, pixels: list[str], votes: list[str]) -> None:
    with open(root / "fer2013.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerow([3, " ".join(pixels), "Training"])
    with open(root / "fer2013new.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Usage", "Image name", "neutral", "happiness", "surprise", "sadness",
                    "anger", "disgust", "fear", "contempt", "unknown", "NF"])  # fmt: skip
        w.writerow(["Training", "fer0.png", *votes])


GOOD_VOTES = ["0", "9", "0", "0", "0", "0", "0", "0", "1", "0"]


@pytest.mark.parametrize("value", ["256", "-1", "1e400", "2.5"])
def test_ferplus_pixel_out_of_range_is_refused(tmp_path, value) -> None:  # type: ignore[no-untyped-def]
    _ferplus(tmp_path, ["7"] * 100 + [value] + ["7"] * 2203, GOOD_VOTES)
    with pytest.raises(DatasetError, match=r"fer2013.csv line 2: pixel"):
        load_dataset("fer+", tmp_path)


@pytest.mark.parametrize("value", ["inf", "1e400", "2.5", "-1", "nan"])
def test_ferplus_vote_not_a_count_is_refused(tmp_path, value) -> None:  # type: ignore[no-untyped-def]
    _ferplus(tmp_path, ["7"] * 2304, [value, *GOOD_VOTES[1:]])
    with pytest.raises(DatasetError, match=r"fer2013new.csv line 2: vote count 'neutral'"):
        load_dataset("fer+", tmp_path)


@pytest.mark.parametrize("code", ["1e400", "inf", "1.5", "11"])
def test_affectnet_expression_not_a_code_is_refused(tmp_path, code) -> None:  # type: ignore[no-untyped-def]
    _affectnet(tmp_path, [("1/a.jpg", code)], ["1/a.jpg"])
    with pytest.raises(DatasetError, match=r"training.csv line 2: expression code"):
        load_dataset("affectnet", tmp_path)


# -- output names on the command line (a tiny untrained model) -------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    from gazelab.models.architectures import build_model

    path = tmp_path_factory.mktemp("model") / "m.keras"
    build_model("small_cnn", (32, 32, 1), 8).save(path)
    return path


def _faces(root: Path) -> Path:
    for k, rel in enumerate(["happy/1.png", "happy/2.png", "sad/1.png"]):
        _png(root / rel, 40 * k + 20, (40, 40))
    return root


@pytest.mark.tf
def test_saliency_png_of_ids_with_slashes_stays_in_out(tmp_path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.cli import main

    faces, out = _faces(tmp_path / "faces"), tmp_path / "sal"
    rc = main(["saliency", "--model", str(tiny_model), "--images", f"folder:{faces}",
               "--analyzer", "gradient", "--png", "--out", str(out)])  # fmt: skip
    assert rc == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(f"{safe_filename(i)}_gradient.png"
                          for i in ("happy/1.png", "happy/2.png", "sad/1.png"))  # fmt: skip
    assert [p for p in out.rglob("*") if p.is_dir()] == []  # nothing written below or above


@pytest.mark.tf
def test_masks_images_from_the_cli_streams_a_folder(tmp_path, tiny_model, capsys) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.cli import main
    from gazelab.models.export import load_masks

    faces, out = _faces(tmp_path / "faces"), tmp_path / "masks"
    rc = main(["masks", "--images", f"folder:{faces}", "--model", str(tiny_model),
               "--algorithm", "mean", "--analyzer", "gradient", "--out", str(out)])  # fmt: skip
    assert rc == 0 and "3 mean masks (0 fallbacks)" in capsys.readouterr().out
    ms = load_masks(out)
    assert ms.ids == ["happy/1.png", "happy/2.png", "sad/1.png"] and ms.masks.shape == (3, 32, 32)
    Image.new("1", (7000, 7000)).save(faces / "sad" / "bomb.png")
    rc = main(["masks", "--images", f"folder:{faces}", "--model", str(tiny_model),
               "--algorithm", "mean", "--analyzer", "gradient", "--out", str(tmp_path / "m2")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "bomb.png is 7000×7000" in err[0]

"""Inputs that used to be read wrong without a word: 16-bit PNGs and a transfer config
without its data sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gazelab.models.datasets.base import DatasetError, read_image


def test_a_16_bit_png_is_scaled_not_read_as_white(tmp_path: Path) -> None:
    """PIL's convert("L") clips 16-bit grey at 255: a ramp 0..65535 read 99.6 % white."""
    ramp = np.linspace(0, 65535, 256 * 64).reshape(64, 256).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == "I;16"
    img = read_image(path)
    assert img.dtype == np.uint8 and img.shape == (64, 256)
    assert np.array_equal(img, np.rint(ramp / 257.0).astype(np.uint8))
    assert img.min() == 0 and img.max() == 255
    assert np.mean(img == 255) < 0.01  # was 0.996
    assert img.mean() == pytest.approx(127.5, abs=0.5)


def test_a_32_bit_float_image_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "float.tiff"
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(path)
    with pytest.raises(DatasetError, match="32-bit float pixels") as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("missing", ["source", "target"])
def test_transfer_without_its_data_sets_says_so_instead_of_training_a_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    from gazelab.app.cli import main

    lines = {"source": 'source = "synthetic:160:0:24:subjects=16"',
             "target": 'target = "synthetic:80:1:24:subjects=10:renderer=b"'}  # fmt: skip
    cfg = tmp_path / "t.toml"
    kept = [v for k, v in lines.items() if k != missing]
    cfg.write_text("[transfer]\n" + "\n".join(kept) + "\nfractions = [1.0]\n")
    rc = main(["transfer", "--config", str(cfg), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"names no {missing}" in err[0] and str(cfg) in err[0]
    assert not (tmp_path / "out" / "table.csv").exists()

"""The BIDS importer's two readers of a gaze table agree: the block-and-column reader
(``_fast_table``) gives exactly the values of the line-by-line reader (``_checked_table``,
``float`` of each cell), and leaves anything irregular to it."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from gazelab.gaze.importers import bids

COLUMNS = ["t_s", "trial_index", "phase", *bids._export_columns().values()]


def _write(path: Path, body: list[str], *, newline: str = "\n") -> Path:
    with gzip.open(path, "wb") as fh:
        fh.write((newline.join(["\t".join(COLUMNS), *body]) + newline).encode())
    return path


def _rows(n: int, seed: int = 3) -> list[str]:
    """``n`` sample lines: awkward numbers (exponents, -0.0, 17 digits), ``n/a`` mixed in."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        cells = [repr(i / 300.0), str(i // 50), "image" if i % 7 else "n/a"]
        for k in range(len(COLUMNS) - 3):
            v = float(rng.normal(500.0, 200.0)) * 10.0 ** int(rng.integers(-8, 8))
            choice = (i + k) % 5
            cells.append(["n/a", repr(v), f"{v:.2f}", f"{v:e}", "-0.0"][choice])
        rows.append("\t".join(cells))
    return rows


def _same(a: bids.Table, b: bids.Table) -> None:
    assert a[1] == b[1]
    assert set(a[0]) == set(b[0])
    for name in b[0]:
        assert a[0][name].tobytes() == b[0][name].tobytes(), name


def test_the_fast_reader_gives_every_value_bit_for_bit(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bids, "_BLOCK", 4096)  # many blocks, lines cut across them
    path = _write(tmp_path / "sub-P1_gaze.tsv.gz", _rows(2000))
    fast = bids._fast_table(path, "utf-8", COLUMNS)
    checked = bids._checked_table(path, "utf-8", COLUMNS)
    assert fast is not None and len(fast[1]) == 2000
    _same(fast, checked)
    assert fast[1][:2] == [None, "image"]  # "n/a" is no phase
    x = fast[0]["x_px"]
    assert np.isnan(x).sum() == 400  # one cell in five is n/a
    assert np.signbit(x[x == 0.0]).sum() >= 400  # every "-0.0" cell keeps its sign


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda rows: [*rows[:5], "", *rows[5:]], "a blank line"),
        (lambda rows: [*rows[:5], rows[5] + "\t1", *rows[6:]], "an extra cell"),
        (lambda rows: [*rows[:5], rows[5].replace("\t", "\t ", 4), *rows[6:]], "a padded cell"),
        (lambda rows: [*rows[:5], rows[5].replace("n/a", "NA", 1), *rows[6:]], "another token"),
        (lambda rows: [*rows[:5], rows[5].replace("n/a", "nan", 1), *rows[6:]], "a NaN"),
        (lambda rows: [rows[1], rows[0], *rows[2:]], "times going back"),
    ],
)
def test_irregular_tables_are_left_to_the_checked_reader(tmp_path: Path, change, why) -> None:  # type: ignore[no-untyped-def]
    rows = change(_rows(40))
    path = _write(tmp_path / "sub-P1_gaze.tsv.gz", rows)
    assert bids._fast_table(path, "utf-8", COLUMNS) is None, why
    try:  # the checked reader either reads it (as float() does) or names the line
        bids._checked_table(path, "utf-8", COLUMNS)
    except bids.ImportFormatError as exc:
        assert f"{path}:" in str(exc)


def test_crlf_bom_and_other_encodings_read_the_same(tmp_path: Path) -> None:
    rows = _rows(30)
    plain = _write(tmp_path / "a_gaze.tsv.gz", rows)
    crlf = _write(tmp_path / "b_gaze.tsv.gz", rows, newline="\r\n")
    assert bids._fast_table(crlf, "utf-8", COLUMNS) is None  # left to the checked reader
    _same(bids._checked_table(crlf, "utf-8", COLUMNS), bids._checked_table(plain, "utf-8", COLUMNS))
    bom = tmp_path / "c_gaze.tsv.gz"
    bom.write_bytes(gzip.compress(b"\xef\xbb\xbf" + gzip.decompress(plain.read_bytes())))
    fast = bids._fast_table(bom, "utf-8", COLUMNS)
    assert fast is not None
    _same(fast, bids._checked_table(plain, "utf-8", COLUMNS))
    assert bids._fast_table(plain, "latin-1", COLUMNS) is None


def test_a_long_line_is_found_a_block_at_a_time(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bids, "MAX_LINE_BYTES", 3000)
    monkeypatch.setattr(bids, "_BLOCK", 1024)
    rows = _rows(20)
    path = _write(tmp_path / "a_gaze.tsv.gz", [*rows[:3], rows[3] + "9" * 5000, *rows[4:]])
    assert bids._fast_table(path, "utf-8", COLUMNS) is None

"""The Tobii and Gazepoint importers' two readers agree: the block-and-column reader
(``_fast_rows``, on :func:`~gazelab.gaze.importers.base.table_blocks`) gives every value of
the line-by-line checked reader bit for bit, and leaves anything irregular to it (whose
errors name the line)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gazelab.gaze.importers import IMPORTERS, ImportOptions, gazepoint, tobii
from gazelab.gaze.importers.base import ImportedRecording, ImportFormatError
from tests.test_import_gazepoint_csv import GP_HEADER, gazepoint_file
from tests.test_import_tobii import studio_file

OPTIONS = ImportOptions(screen_px=(1280, 1024))


def _parse(fmt: str, path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> Any:
    """The recordings (or the error's text) with the fast reader on or off; with it on,
    whether it read the file (``True``) or left it to the checked reader."""
    module = {"tobii": tobii, "gazepoint": gazepoint}[fmt]
    original = module._fast_rows
    used: list[bool] = []

    def spy(*args: Any) -> Any:
        out = None if not fast else original(*args)
        used.append(out is not None)
        return out

    monkeypatch.setattr(module, "_fast_rows", spy)
    try:
        result: Any = IMPORTERS[fmt].parse(path, OPTIONS if fmt == "gazepoint" else ImportOptions())
    except ImportFormatError as exc:
        result = str(exc)
    monkeypatch.setattr(module, "_fast_rows", original)
    return result, used == [True]


def _same(a: list[ImportedRecording], b: list[ImportedRecording], skip: str = "") -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        for f in dataclasses.fields(ImportedRecording):
            if f.name == skip:
                continue
            va, vb = getattr(ra, f.name), getattr(rb, f.name)
            if isinstance(vb, np.ndarray):
                assert va.dtype == vb.dtype and va.tobytes() == vb.tobytes(), f.name
            elif f.name == "events":  # NaN positions compare by their text
                assert repr(va) == repr(vb)
            else:
                assert va == vb, f.name


def _agree(fmt: str, path: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool = True) -> Any:
    """Both readers' recordings are the same; ``fast``: the fast reader read the file."""
    got, used = _parse(fmt, path, monkeypatch, True)
    want, _ = _parse(fmt, path, monkeypatch, False)
    assert used == fast
    if isinstance(want, str):
        assert got == want
    else:
        _same(got, want)
    return got


def _study(path: Path, participants: int = 3, per_image: int = 700, *, crlf: bool = False,
           bom: bool = False) -> int:  # fmt: skip
    """A Tobii Studio file in the benchmark's columns, awkward numbers and missing cells
    (empty, ``.``, ``NA``, padded) mixed in; returns the number of samples."""
    rng = np.random.default_rng(5)
    lines = ["ParticipantName\tRecordingTimestamp\tMediaName\tMediaPosX (ADCSpx)\t"
             "MediaPosY (ADCSpx)\tMediaWidth\tMediaHeight\tGazePointLeftX (ADCSpx)\t"
             "GazePointLeftY (ADCSpx)\tValidityLeft\tGazePointRightX (ADCSpx)\t"
             "GazePointRightY (ADCSpx)\tValidityRight\tPupilLeft\tGazeEventType\tFixationIndex"]  # fmt: skip
    n = 0
    for who in range(participants):
        t = 1000.0 * who
        for img in range(3):
            for i in range(per_image):
                v = float(rng.normal(600.0, 200.0))
                cell = [repr(v), f"{v:.1f}", f"{v:e}", "", " 12.5", "-0.0", ".", "NA"][i % 8]
                fixing = (i // 20) % 2 == 0
                lines.append("\t".join([
                    f"P{who}", f"{t:.3f}", f" face{img}.png" if i == 5 else f"face{img}.png",
                    "440", "212" if i < 300 else "213", "400", "600", cell, f"{v:.2f}",
                    "0" if i % 9 else "4", f"{v + 3:.1f}", f"{v + 1:.1f}", "0", "3,25",
                    "Fixation" if fixing else "Saccade", str(i // 40 + 1) if fixing else "",
                ]))  # fmt: skip
                t += 10.0 / 3.0
                n += 1
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return n


def test_tobii_fast_reader_every_value_bit_for_bit(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tobii, "_BLOCK", 4096)  # many blocks: lines cut across them
    path = tmp_path / "study.tsv"
    n = _study(path)
    recs = _agree("tobii", path, monkeypatch)
    assert [r.participant for r in recs] == ["P0", "P1", "P2"]
    assert sum(r.n for r in recs) == n == 6300
    r = recs[0]
    assert [t.image_id for t in r.trials] == ["face0.png", "face1.png", "face2.png"]
    assert r.trials[0].rect == tobii.Rect(440.0, 212.0, 400.0, 600.0)
    assert np.isnan(r.left_x).sum() > 500 and r.left_pupil[1] == 3.25  # decimal comma
    lost = np.isnan(r.left_pupil)  # a lost eye's pupil (validity 4): never a number
    assert lost.sum() > 100 and np.isnan(r.left_x[lost]).all()
    assert np.signbit(r.left_x[r.left_x == 0.0]).all()
    assert r.fix.sum() > 0


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("bom", [False, True])
def test_tobii_crlf_and_bom_read_the_same(
    tmp_path: Path, monkeypatch, crlf: bool, bom: bool
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tobii, "_BLOCK", 1000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, other = tmp_path / "a" / "r.tsv", tmp_path / "b" / "r.tsv"
    _study(plain, 2, 100)
    _study(other, 2, 100, crlf=crlf, bom=bom)
    _same(_agree("tobii", other, monkeypatch), _agree("tobii", plain, monkeypatch), "source")


def test_tobii_documented_exports_read_fast(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The Studio export of the Tobii tests (event rows, media coordinates, decimal comma)
    and a Pro Lab export (other sensors' rows, µs, messages)."""
    monkeypatch.setattr(tobii, "_BLOCK", 700)
    studio = tmp_path / "studio.tsv"
    studio_file(studio, ("P01", "P02", "P03"))
    recs = _agree("tobii", studio, monkeypatch)
    assert [r.n for r in recs] == [60, 60, 60]
    assert [[e[2]["text"] for e in r.events if e[1] == "message"] for r in recs] == [
        ["KeyPress"]] * 3  # fmt: skip
    header = ["Recording timestamp [μs]", "Sensor", "Participant name", "Event",
              "Gaze point X", "Gaze point Y", "Presented Media name", "Recording resolution"]  # fmt: skip
    rows = [["1000000", "Eye Tracker", "A", "", "10", "20", "f.png", "1920 x 1080"],
            ["1004000", "Gyroscope", "A", "", "", "", "", ""],
            ["1008333", "Eye Tracker", "A", "", "11", "21", "f.png", ""],
            ["1010000", "", "A", "ImageStimulusEnd", "", "", "", ""],
            ["1016666", "Eye Tracker", "A", "", "", "", "", ""]]  # fmt: skip
    pro = tmp_path / "pl.tsv"
    pro.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    (r,) = _agree("tobii", pro, monkeypatch)
    assert r.time_ms.tolist() == [1000.0, 1008.333, 1016.666] and r.screen_px == (1920, 1080)


def _gazepoint(path: Path, n: int = 3000, *, crlf: bool = False, bom: bool = False) -> None:
    """The benchmark's Gazepoint columns; awkward numbers, missing cells, USER messages."""
    rng = np.random.default_rng(7)
    lines = ["CNT,TIME,FPOGX,FPOGY,FPOGS,FPOGD,FPOGID,FPOGV,BPOGX,BPOGY,BPOGV,"
             "LPOGX,LPOGY,LPOGV,RPOGX,RPOGY,RPOGV,LPMM,MEDIA_NAME,USER"]  # fmt: skip
    for i in range(n):
        a, b = float(rng.random()), float(rng.random())
        cell = [repr(a), f"{a:.5f}", f"{a:e}", "", " 0.25", "-0.0", "NA"][i % 7]
        lines.append(",".join([
            str(i), f"{i / 150:.5f}", f"{a:.5f}", f"{b:.5f}", f"{(i // 75) * 0.5:.5f}",
            f"{(i % 75) / 150:.5f}", str(i // 75), str(int(i % 75 > 3)), cell, f"{b:.5f}",
            str(int(i % 11 > 0)), f"{a:.5f}", f"{b:.5f}", str(int(i % 13 > 0)), f"{a:.4f}",
            cell, "1", "3.5" if i % 6 else "", f"face{i // 1000}.png",
            f" START {i}" if i % 500 == 0 else "",
        ]))  # fmt: skip
    end = "\r\n" if crlf else "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (end.join(lines) + end).encode())


def test_gazepoint_fast_reader_every_value_bit_for_bit(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(gazepoint, "_BLOCK", 4096)
    path = tmp_path / "P1_all_gaze.csv"
    _gazepoint(path)
    (r,) = _agree("gazepoint", path, monkeypatch)
    assert r.n == 3000 and [t.image_id for t in r.trials] == ["face0.png", "face1.png",
                                                               "face2.png"]  # fmt: skip
    kinds = [e[1] for e in r.events]
    assert kinds.count("message") == 6 and kinds.count("tracker_fixation") == 40
    assert np.isnan(r.left_pupil).sum() == 500


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("bom", [False, True])
def test_gazepoint_crlf_and_bom_read_the_same(
    tmp_path: Path, monkeypatch, crlf: bool, bom: bool
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(gazepoint, "_BLOCK", 1000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, other = tmp_path / "a" / "r.csv", tmp_path / "b" / "r.csv"
    _gazepoint(plain, 400)
    _gazepoint(other, 400, crlf=crlf, bom=bom)
    _same(
        _agree("gazepoint", other, monkeypatch), _agree("gazepoint", plain, monkeypatch), "source"
    )


def test_gazepoint_documented_export_reads_fast(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(gazepoint, "_BLOCK", 500)
    path = tmp_path / "g.csv"
    gazepoint_file(path)
    (r,) = _agree("gazepoint", path, monkeypatch)
    assert r.n == 60 and GP_HEADER.startswith("MEDIA_ID")


Change = Callable[[list[str]], list[str]]
IRREGULAR: dict[str, Change] = {
    "a blank line": lambda rows: [*rows[:5], "", *rows[5:]],
    "an extra cell": lambda rows: [*rows[:5], rows[5] + "{sep}1", *rows[6:]],
    "a cut line": lambda rows: [*rows[:5], rows[5][: len(rows[5]) // 2], *rows[6:]],
    "a quoted cell": lambda rows: [
        *rows[:5],
        '"' + rows[5].replace("{sep}", '"{sep}', 1),
        *rows[6:],
    ],  # fmt: skip
    "a NaN": lambda rows: [*rows[:5], rows[5].replace("{sep}1", "{sep}nan", 1), *rows[6:]],
    "text for a number": lambda rows: [
        *rows[:5],
        rows[5].replace("{sep}1", "{sep}x1", 1),
        *rows[6:],
    ],  # fmt: skip
    "times going back": lambda rows: [*rows[:5], rows[6], rows[5], *rows[7:]],
    "a lone carriage return": lambda rows: [
        *rows[:5],
        rows[5].replace("{sep}", "\r{sep}", 1),
        *rows[6:],
    ],  # fmt: skip
}


@pytest.mark.parametrize("fmt", ["tobii", "gazepoint"])
@pytest.mark.parametrize("why", list(IRREGULAR))
def test_irregular_files_are_left_to_the_checked_reader(
    tmp_path: Path, monkeypatch, fmt: str, why: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / ("t.tsv" if fmt == "tobii" else "g.csv")
    (_study(path, 1, 40) if fmt == "tobii" else _gazepoint(path, 40))
    lines = path.read_text(encoding="utf-8").split("\n")
    sep = "\t" if fmt == "tobii" else ","
    change = IRREGULAR[why]
    rows = [r.replace(sep, "{sep}") for r in lines[1:-1]]
    bad = [r.replace("{sep}", sep) for r in change(rows)]
    path.write_text("\n".join([lines[0], *bad]) + "\n", encoding="utf-8")
    got = _agree(fmt, path, monkeypatch, fast=False)
    if isinstance(got, str):  # the checked reader's error names the file and line
        assert got.startswith(f"{path}:")


def test_plain_decimals_are_float_bit_for_bit() -> None:
    """The vectorised reader of plain decimals gives ``float(cell)`` bit for bit (every
    layout: sign, point anywhere, 1 to 15 digits, lengths mixed), and refuses whatever
    else ``float`` or the missing tokens must judge."""
    from gazelab.gaze.importers.base import float_cells, plain_decimals

    rng = np.random.default_rng(11)
    read = 0
    for _ in range(400):
        n, digits = int(rng.integers(1, 300)), int(rng.integers(1, 16))
        point, dot, minus = int(rng.integers(0, digits + 1)), rng.random() < 0.8, rng.random() < 0.3
        mixed = rng.random() < 0.5
        cells = []
        for _ in range(n):
            d = int(rng.integers(1, 16)) if mixed else digits
            p = int(rng.integers(0, d + 1)) if mixed else point
            s = "".join(map(str, rng.integers(0, 10, d)))
            cells.append(("-" if minus else "") + s[:p] + ("." if dot else "") + s[p:])
        want = np.array([float(c) for c in cells])
        got = plain_decimals(cells)
        if got is None:  # only cells of one length laid out differently
            assert mixed
            continue
        read += 1
        assert got.tobytes() == want.tobytes()
        assert float_cells(cells).tobytes() == want.tobytes()  # type: ignore[union-attr]
    assert read > 200
    halfway = ["0.1", "0.3", "2.675", "1.0000000000005", "-0.5", "-0", "5.", ".5", "-.5"]
    for c in halfway:
        assert plain_decimals([c, c]).tobytes() == np.array([float(c)] * 2).tobytes()  # type: ignore[union-attr]
    for bad in ([""], ["."], ["-"], ["-."], ["1.2.3"], ["1-2"], ["1e5"], [" 1"], ["1 "],
                ["1_0"], ["1" * 16], ["0.000000000000001"], ["\u0661"], ["1\n2", "3"], ["+1"],
                ["nan"], ["inf"], ["1,5"], ["1.25", "12.5"], ["1.5", "-1."]):  # fmt: skip
        assert plain_decimals(bad) is None, bad
    assert plain_decimals(["1.25", "-12.5", "7"]).tolist() == [1.25, -12.5, 7.0]  # type: ignore[union-attr]

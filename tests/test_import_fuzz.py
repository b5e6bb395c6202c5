"""Every importer on damaged files: a cut line, a missing or an extra column, bytes that
are not UTF-8, NaN / inf, a line of 32 MiB (read with bounded memory), time going back.
Each is one line naming the file, the line and the problem, exit 2, and nothing imported
(the store keeps exactly the session it had)."""

from __future__ import annotations

import gzip
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from gazelab.annotation.bids import export_session
from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.importers import IMPORTERS, ImportFormatError, ImportOptions
from gazelab.gaze.trackers.base import GazeSample
from gazelab.settings import Settings

DATA = Path(__file__).parent / "data" / "recordings"

EYELINK = [
    "MSG\t100 GAZE_COORDS 0.00 0.00 1919.00 1079.00",
    "SAMPLES\tGAZE\tLEFT\tRIGHT\tRATE\t 500.00\tTRACKING\tCR\tFILTER\t2",
    "100\t 500.0\t 380.0\t 900.0\t 510.0\t 381.0\t 900.0\t.....",
    "102\t 501.0\t 381.0\t 900.0\t 511.0\t 382.0\t 900.0\t.....",
    "104\t 502.0\t 382.0\t 900.0\t 512.0\t 383.0\t 900.0\t.....",
    "EFIX L   100\t104\t6\t 501.0\t 381.0\t900",
]
TOBII = [
    "ParticipantName\tRecordingTimestamp\tGazePointX (ADCSpx)\tGazePointY (ADCSpx)\tMediaName",
    "P1\t0\t100.5\t200.5\tf.png",
    "P1\t3\t101.5\t201.5\tf.png",
    "P1\t7\t102.5\t202.5\tf.png",
]
GAZEPOINT = [
    "CNT,TIME,FPOGX,FPOGY,FPOGS,FPOGD,FPOGID,FPOGV,BPOGX,BPOGY,BPOGV,USER",
    "0,0.00000,0.5,0.5,0.0,0.0,1,0,0.5,0.5,1,",
    "1,0.00667,0.5,0.5,0.0,0.00667,1,1,0.5,0.5,1,",
    "2,0.01333,0.5,0.5,0.0,0.01333,1,1,0.5,0.5,1,",
]
CSV = ["time,x,y", "0,100,200", "4,101,201", "8,102,202"]

# (format, base lines, the data line to damage (index), import flags)
FORMATS = {
    "eyelink": ("r.asc", EYELINK, 3, []),
    "tobii": ("t.tsv", TOBII, 2, ["--resolution", "1920x1080"]),
    "gazepoint": ("g.csv", GAZEPOINT, 2, ["--resolution", "1920x1080"]),
    "csv": ("c.csv", CSV, 2, ["--resolution", "1920x1080"]),
}


def _sep(line: str) -> str:
    return "\t" if "\t" in line else ","


def _cut(line: str) -> str:
    return _sep(line).join(line.split(_sep(line))[:2])


def _missing(line: str) -> str:
    return _sep(line).join(line.split(_sep(line))[:-1])


def _extra(line: str) -> str:
    return line + _sep(line) + "7"


def _nan(line: str) -> str:  # the time (tables) or gaze x (EyeLink) becomes NaN
    cells = line.split(_sep(line))
    return _sep(line).join([cells[0], "nan", *cells[2:]])


def _inf(line: str) -> str:
    cells = line.split(_sep(line))
    return _sep(line).join([cells[0], *cells[1:2], "-inf", *cells[3:]])


MUTATIONS: dict[str, tuple[Callable[[str], str], str]] = {
    "cut line": (_cut, "fields"),
    "missing column": (_missing, "fields"),
    "extra column": (_extra, "fields"),
    "nan": (_nan, "not a finite number"),
    "inf": (_inf, "not a finite number"),
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store already holding one imported session, which must stay exactly as it is."""
    path = tmp_path / "s.sqlite"
    assert main(["import", "eyelink", str(DATA / "pymovements_raccoons.asc"),
                 "--store", str(path)]) == 0  # fmt: skip
    return path


def _refused(store: Path, fmt: str, path: Path, flags: list[str], capsys) -> str:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["import", fmt, str(path), "--store", str(store), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    with SessionStore(store) as st:
        assert [r.id for r in st.sessions()] == [1] and st.sample_count(1) == 433
    return err


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_damaged_line_is_named(
    store: Path, tmp_path: Path, capsys, fmt: str, mutation: str
) -> None:  # type: ignore[no-untyped-def]
    name, lines, k, flags = FORMATS[fmt]
    fn, problem = MUTATIONS[mutation]
    if fmt == "eyelink" and mutation == "extra column":
        pytest.skip("EyeLink sample lines carry optional extra columns (velocity, INPUT)")
    bad = list(lines)
    bad[k] = fn(bad[k])
    if fmt == "eyelink" and mutation == "missing column":  # past the optional flags column
        bad[k] = fn(bad[k])
    if fmt == "csv" and mutation == "nan":  # NaN gaze is a missing value there: NaN time
        bad[k] = "nan" + lines[k][lines[k].index(",") :]
    path = tmp_path / name
    path.write_text("\n".join(bad) + "\n", encoding="utf-8")
    err = _refused(store, fmt, path, flags, capsys)
    assert f"{path}:{k + 1}: " in err and problem in err


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_not_utf8_time_back_and_a_huge_line(store: Path, tmp_path: Path, capsys, fmt: str) -> None:  # type: ignore[no-untyped-def]
    name, lines, k, flags = FORMATS[fmt]
    path = tmp_path / name
    raw = [ln.encode() for ln in lines]
    raw[k] = raw[k].replace(b"0", b"\xff", 1)
    path.write_bytes(b"\n".join(raw) + b"\n")
    err = _refused(store, fmt, path, flags, capsys)
    assert f"{path}:{k + 1}: not UTF-8 text" in err
    # time going back: two samples swapped
    back = list(lines)
    back[k + 1], back[k] = back[k], back[k + 1]
    path.write_text("\n".join(back) + "\n", encoding="utf-8")
    err = _refused(store, fmt, path, flags, capsys)
    assert f"{path}:{k + 2}: time" in err and "goes back" in err
    # a 32 MiB line: found without reading it whole
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines[:k]) + "\n")
        chunk = "9" * (1 << 20)
        for _ in range(32):
            fh.write(chunk)
        fh.write("\n")
    tracemalloc.start()
    with pytest.raises(ImportFormatError, match=rf"{path.name}:{k + 1}: line longer than 1024 KiB"):
        IMPORTERS[fmt].parse(path, ImportOptions(screen_px=(1920, 1080)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20  # bounded: a few MiB, not the 32 MiB line
    _refused(store, fmt, path, flags, capsys)


def _export(tmp_path: Path) -> Path:
    with SessionStore(tmp_path / "a.sqlite", create=True) as a:
        rec = a.create_session("P09", settings_toml=Settings().to_toml(), seed=0,
                               image_source="synthetic:2:0", stimulus_order=["a", "b"],
                               start_local_s=0.0)  # fmt: skip
        a.add_samples(rec.id, [GazeSample(float(i), i / 100.0, 1.0, 2.0) for i in range(4)],
                      trial_index=0, phase="image")  # fmt: skip
        return export_session(a, rec.id, tmp_path / "e")["gaze"]


def test_bids_damaged_files(store: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    gaze = _export(tmp_path)
    with gzip.open(gaze, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    target = tmp_path / "bad" / gaze.name
    target.parent.mkdir()
    shutil.copy(gaze.with_name(gaze.name.replace("_gaze.tsv.gz", "_gaze.json")),
                target.parent)  # fmt: skip

    def write(body: list[str] | bytes) -> None:
        data = body if isinstance(body, bytes) else ("\n".join(body) + "\n").encode()
        with gzip.open(target, "wb") as fh:
            fh.write(data)

    cases: list[tuple[list[str] | bytes, str]] = [
        ([*lines[:2], lines[2][:9], *lines[3:]], f"{target}:3: "),
        ([*lines[:2], lines[2] + "\t1", *lines[3:]], f"{target}:3: "),
        ([*lines[:2], lines[3], lines[2], *lines[4:]], f"{target}:4: t_s"),
        ([*lines[:2], lines[2].replace("\t1.0\t", "\tinf\t", 1), *lines[3:]], f"{target}:3: "),
        (("\n".join(lines[:2]) + "\n").encode() + b"\xff\n", f"{target}:3: not UTF-8"),
    ]
    for body, where in cases:
        write(body)
        err = _refused(store, "bids", target, [], capsys)
        assert where in err, err
    target.write_bytes(gaze.read_bytes()[:60])  # a cut .gz
    err = _refused(store, "bids", target, [], capsys)
    assert f"{target}:" in err and "cannot be read" in err

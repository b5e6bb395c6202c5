"""``gazelab import gazepoint`` (a Gazepoint Analysis all_gaze CSV written in its documented
columns) and ``gazelab import csv`` (a real Tobii TX300 SDK dump through a column mapping,
and the mapping from an import TOML)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.detectors.tracker import tracker_fixation_events
from gazelab.gaze.fixations import detect_fixations
from gazelab.gaze.importers import IMPORTERS, CsvMapping, ImportOptions
from gazelab.settings import Settings

DATA = Path(__file__).parent / "data" / "recordings"
TX300 = DATA / "i2mc_tx300_participant2_1.tsv"

GP_HEADER = ("MEDIA_ID,MEDIA_NAME,CNT,TIME(2023/03/01 10:00:00.000),TIMETICK(f=10000000),"
             "FPOGX,FPOGY,FPOGS,FPOGD,FPOGID,FPOGV,BPOGX,BPOGY,BPOGV,"
             "LPOGX,LPOGY,LPOGV,RPOGX,RPOGY,RPOGV,LPMM,RPMM,USER")  # fmt: skip


def gazepoint_file(path: Path) -> list[tuple[float, float, float, bool, bool]]:
    """60 samples at 150 Hz: fixation ids 0..2 of 20 samples each, FPOGV raised from each
    fixation's 4th sample; the right eye lost on every 5th sample; one USER message."""
    lines = [GP_HEADER]
    out = []
    for i in range(60):
        t = round(i / 150.0, 5)
        fid, k = divmod(i, 20)
        fv = k >= 3
        fs = round(fid * 20 / 150.0, 5)
        fd = round(k / 150.0, 5)
        lx, ly = 0.25 + 0.1 * fid, 0.5
        rv = i % 5 != 4
        rx, ry = lx + 0.02, 0.52
        user = "START face1" if i == 0 else ""
        lines.append(",".join(str(v) for v in [
            0, "face1.png", i, f"{t:.5f}", i * 66666, f"{lx:.4f}", "0.5000", f"{fs:.5f}",
            f"{fd:.5f}", fid, int(fv), f"{lx + 0.01:.4f}", "0.5100", 1, f"{lx:.4f}",
            f"{ly:.4f}", 1, f"{rx:.4f}" if rv else "0", f"{ry:.4f}" if rv else "0", int(rv),
            "3.5", "3.6", user]))  # fmt: skip
        out.append((t * 1000.0, lx, rx, rv, fv))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def test_gazepoint_samples_eyes_and_fixations(tmp_path: Path) -> None:
    f = tmp_path / "P07_all_gaze.csv"
    written = gazepoint_file(f)
    store = tmp_path / "s.sqlite"
    assert main(["import", "gazepoint", str(f), "--store", str(store),
                 "--resolution", "1920x1080"]) == 0  # fmt: skip
    with SessionStore(store) as st:
        (rec,) = st.sessions()
        table = st.samples(rec.id)
        events = tracker_fixation_events(st, rec.id)
        messages = [e for e in st.events(rec.id) if e["kind"] == "message"]
    assert rec.participant == "P07_all_gaze" and rec.stimulus_order == ("face1.png",)
    assert len(table["time_ms"]) == len(written) == 60
    assert table["time_ms"].tolist() == [float(f"{w[0] / 1000:.5f}") * 1000.0 for w in written]
    # average of the valid eyes; the left eye alone where the right one is lost
    want = np.array([(lx + rx) / 2 if rv else lx for _, lx, rx, rv, _ in written]) * 1920
    assert np.allclose(table["x"], want, rtol=0, atol=1e-6)
    # the tracker's fixations: FPOGS + FPOGD of each id, flagged samples from FPOGV
    assert events["onset_ms"].tolist() == [0.0, 133.33, 266.67]
    assert np.allclose(events["offset_ms"] - events["onset_ms"], 19 / 150 * 1000, atol=0.01)
    fx = detect_fixations(table, "tracker")
    assert fx["n_samples"].tolist() == [17, 17, 17]
    assert [m["payload"]["text"] for m in messages] == ["START face1"]
    assert Settings.from_toml(rec.settings_toml).tracker.rate_hz == 150


def test_gazepoint_needs_the_screen_size(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "g.csv"
    gazepoint_file(f)
    assert main(["import", "gazepoint", str(f), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resolution WxH" in err
    assert not (tmp_path / "s.sqlite").exists()  # a refused first import leaves no store


def test_csv_mapping_reads_a_real_tx300_dump(tmp_path: Path) -> None:
    with open(TX300, encoding="utf-8") as fh:
        rows = [ln.rstrip("\n").split("\t") for ln in fh][1:]
    config = tmp_path / "import.toml"
    config.write_text(
        'participant = "P02"\nresolution = [1920, 1080]\nscreen_mm = [509, 286]\n'
        "distance_cm = 65\n"
        '[csv]\ntime = "RelTimestamp"\ntime_unit = "ms"\nxy_unit = "norm"\n'
        'left_x = "LGazePos2dx"\nleft_y = "LGazePos2dy"\nright_x = "RGazePos2dx"\n'
        'right_y = "RGazePos2dy"\nleft_validity = "LValidity"\nright_validity = "RValidity"\n'
        "valid_max = 1\n"
    )
    store = tmp_path / "s.sqlite"
    assert main(["import", "csv", str(TX300), "--config", str(config), "--store", str(store),
                 "--eye", "right"]) == 0  # fmt: skip
    with SessionStore(store) as st:
        (rec,) = st.sessions()
        table = st.samples(rec.id)
    assert len(table["time_ms"]) == len(rows) == 1210
    assert table["time_ms"].tolist() == [float(r[0]) for r in rows]
    rv = np.array([float(r[6]) <= 1 for r in rows])
    want = np.where(rv, np.array([float(r[4]) for r in rows]) * 1920, np.nan)
    assert np.array_equal(table["x"], want, equal_nan=True)
    assert int(table["valid"].sum()) == int(rv.sum()) == 1093
    s = Settings.from_toml(rec.settings_toml)
    assert (s.display.width_mm, s.display.height_mm, s.display.distance_mm) == (509.0, 286.0, 650.0)
    assert s.display.resolution_px == (1920, 1080) and rec.participant == "P02"


def test_csv_degrees_trials_and_participants(tmp_path: Path) -> None:
    f = tmp_path / "deg.csv"
    f.write_text(
        "subject,t_s,gx,gy,trial,img\n"
        "A,0.000,0,0,1,a.png\nA,0.004,1,-1,1,a.png\nA,0.008,NaN,NaN,2,b.png\n"
        "B,0.000,0,0,1,a.png\n"
    )
    m = CsvMapping(time="t_s", time_unit="s", x="gx", y="gy", xy_unit="deg", trial="trial",
                   image="img", participant="subject")  # fmt: skip
    opts = ImportOptions(screen_px=(1000, 800), screen_mm=(500.0, 400.0), distance_mm=600.0, csv=m)
    a, b = IMPORTERS["csv"].parse(f, opts)
    assert (a.participant, a.n, b.participant, b.n) == ("A", 3, "B", 1)
    assert a.time_ms.tolist() == [0.0, 4.0, 8.0]
    d = 600.0 * np.tan(np.radians(1.0)) / 0.5  # 1° from the centre, 0.5 mm pixels
    assert np.allclose(a.x[:2], [500.0, 500.0 + d]) and np.allclose(a.y[:2], [400.0, 400.0 - d])
    assert a.valid.tolist() == [True, True, False]
    assert [t.image_id for t in a.trials] == ["a.png", "b.png"]

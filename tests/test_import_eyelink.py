"""``gazelab import eyelink``: real ASC files (pymovements' test files), counted by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.detectors.tracker import tracker_fixation_events
from gazelab.gaze.fixations import detect_fixations
from gazelab.gaze.importers import IMPORTERS, ImportFormatError, ImportOptions

DATA = Path(__file__).parent / "data" / "recordings"
BINO = DATA / "pymovements_eyelink_binocular_example.asc"
MONO = DATA / "pymovements_eyelink_monocular_no_dummy_example.asc"
RACCOONS = DATA / "pymovements_raccoons.asc"


def _sample_rows(path: Path) -> list[list[str]]:
    """The file's sample lines, split: the lines that start with a digit."""
    with open(path, encoding="utf-8") as fh:
        return [ln.split() for ln in fh if ln[:1].isdigit()]


def _num(tok: str) -> float:
    return np.nan if tok == "." else float(tok)


def _efix(path: Path, eye: str) -> list[tuple[float, float]]:
    with open(path, encoding="utf-8") as fh:
        return [(float(p[2]), float(p[3])) for p in (ln.split() for ln in fh)
                if p and p[0] == "EFIX" and p[1] == eye]  # fmt: skip


def _import(tmp_path: Path, *argv: str) -> SessionStore:
    store = tmp_path / "s.sqlite"
    assert main(["import", "eyelink", *argv, "--store", str(store)]) == 0
    return SessionStore(store)


@pytest.mark.parametrize("path", [BINO, MONO, RACCOONS], ids=lambda p: p.stem)
def test_stored_samples_are_the_files_samples(tmp_path: Path, path: Path) -> None:
    rows = _sample_rows(path)
    with _import(tmp_path, str(path), "--participant", "P01") as st:
        (rec,) = st.sessions()
        table = st.samples(rec.id)
    t_file = np.array([float(r[0]) for r in rows])
    assert len(table["time_ms"]) == len(rows)
    assert np.array_equal(table["time_ms"], t_file)  # the tracker's clock, unchanged
    assert np.array_equal(table["local_s"], t_file / 1000.0)
    lx = np.array([_num(r[1]) for r in rows])
    assert np.array_equal(table["left_x"], lx, equal_nan=True)


def test_counts_rates_eyes_and_trials_of_each_fixture() -> None:
    parse = IMPORTERS["eyelink"].parse
    (b,) = parse(BINO, ImportOptions())
    (m,) = parse(MONO, ImportOptions())
    (r,) = parse(RACCOONS, ImportOptions())
    assert (b.n, m.n, r.n) == (368, 297, 433)
    assert (b.rate_hz, m.rate_hz, r.rate_hz) == (1000.0, 500.0, 1000.0)
    assert b.eyes_recorded == ("left", "right") and b.eye == "average"
    assert m.eyes_recorded == ("left",) and m.eye == "left"
    assert b.screen_px == m.screen_px == r.screen_px == (1920, 1080)
    # Data Viewer's trial messages: TRIALID, TRIAL_VAR, IMGLOAD FILL
    (tr,) = m.trials
    assert tr.image_id == "Images/text.png" and tr.variables["condition"] == "TEXT"
    assert (tr.rect.x, tr.rect.y, tr.rect.w, tr.rect.h) == (0.0, 0.0, 1920.0, 1080.0)
    assert tr.start_ms == 642470.0 and tr.image_onset_ms == 642499.0
    assert [t.label for t in b.trials] == ["I902C_low"] and [t.label for t in r.trials] == ["0"]


def test_both_eyes_left_right_average_with_one_eye_fallback() -> None:
    rows = _sample_rows(BINO)
    lx = np.array([_num(r[1]) for r in rows])
    rx = np.array([_num(r[4]) for r in rows])
    parse = IMPORTERS["eyelink"].parse
    (left,) = parse(BINO, ImportOptions(eye="left"))
    (right,) = parse(BINO, ImportOptions(eye="right"))
    (avg,) = parse(BINO, ImportOptions(eye="average"))
    assert np.array_equal(left.x, lx, equal_nan=True)
    assert np.array_equal(right.x, rx, equal_nan=True)
    both = np.isfinite(lx) & np.isfinite(rx)
    only_l = np.isfinite(lx) & ~np.isfinite(rx)
    only_r = ~np.isfinite(lx) & np.isfinite(rx)
    assert np.array_equal(avg.x[both], (lx[both] + rx[both]) / 2)
    assert np.array_equal(avg.x[only_l], lx[only_l]) and np.array_equal(avg.x[only_r], rx[only_r])
    # this recording: 271 samples with both eyes, 17 with the right eye only (fallback), 80 none
    assert (int(both.sum()), int(only_l.sum()), int(only_r.sum())) == (271, 0, 17)
    assert int(avg.valid.sum()) == 288 and int((~avg.valid).sum()) == 80
    with pytest.raises(ImportFormatError, match="the right eye was not recorded"):
        parse(MONO, ImportOptions(eye="right"))


def test_fallback_when_one_eye_is_missing(tmp_path: Path) -> None:
    asc = tmp_path / "b.asc"
    asc.write_text(
        "MSG\t10 GAZE_COORDS 0 0 1279 1023\n"
        "SAMPLES\tGAZE\tLEFT\tRIGHT\tRATE\t 500.00\tTRACKING\tCR\tFILTER\t2\n"
        "10\t100.0\t200.0\t900.0\t110.0\t210.0\t900.0\t.....\n"
        "12\t   .\t   .\t    0.0\t120.0\t220.0\t900.0\t.....\n"
        "14\t130.0\t230.0\t900.0\t   .\t   .\t    0.0\t.....\n"
        "16\t   .\t   .\t    0.0\t   .\t   .\t    0.0\t.....\n"
    )
    (r,) = IMPORTERS["eyelink"].parse(asc, ImportOptions())
    assert np.array_equal(r.x, [105.0, 120.0, 130.0, np.nan], equal_nan=True)
    assert np.array_equal(r.y, [205.0, 220.0, 230.0, np.nan], equal_nan=True)
    assert r.valid.tolist() == [True, True, True, False]
    assert r.screen_px == (1280, 1024) and r.rate_hz == 500.0


def test_eye_choice_is_recorded_in_the_session(tmp_path: Path) -> None:
    with _import(tmp_path, str(BINO), "--eye", "right") as st:
        ev = next(e for e in st.events(1) if e["kind"] == "import")
    p = ev["payload"]
    assert p["eye"] == "right" and p["eyes_recorded"] == ["left", "right"]
    assert p["format"] == "eyelink" and p["rate_hz"] == 1000.0 and p["samples"] == 368


def test_tracker_events_stored_and_usable_as_detector(tmp_path: Path) -> None:
    with _import(tmp_path, str(RACCOONS)) as st:
        events = st.events(1)
        table = st.samples(1)
        fx_events = tracker_fixation_events(st, 1)
    kinds = [e["kind"] for e in events]
    with open(RACCOONS, encoding="utf-8") as fh:
        text = fh.read()
    assert kinds.count("tracker_fixation") == text.count("\nEFIX") == 1
    assert kinds.count("tracker_saccade") == text.count("\nESACC")
    assert kinds.count("tracker_blink") == text.count("\nEBLINK")
    assert kinds.count("message") == text.count("\nMSG")
    efix = _efix(RACCOONS, "L")
    assert fx_events["onset_ms"].tolist() == [a for a, _ in efix]
    # the 'tracker' detector gives EyeLink's EFIX intervals (inside the samples) exactly
    fx = detect_fixations(table, "tracker")
    t0, t1 = table["time_ms"][0], table["time_ms"][-1]
    want = [(max(a, t0), min(b, t1)) for a, b in efix if b >= t0 and a <= t1]
    got = list(zip(fx["onset_ms"].tolist(), fx["offset_ms"].tolist(), strict=True))
    assert got == want


def test_user_trial_patterns(tmp_path: Path) -> None:
    asc = tmp_path / "p.asc"
    asc.write_text(
        "MSG\t5 GAZE_COORDS 0 0 1919 1079\n"
        "SAMPLES\tGAZE\tLEFT\tRATE\t1000.00\tTRACKING\tCR\tFILTER\t2\n"
        "MSG\t10 show faces/a.png\n10\t1.0\t2.0\t3.0\t...\n11\t1.0\t2.0\t3.0\t...\n"
        "MSG\t12 hide\n12\t1.0\t2.0\t3.0\t...\n"
        "MSG\t13 show faces/b.png\n13\t1.0\t2.0\t3.0\t...\n14\t1.0\t2.0\t3.0\t...\n"
        "MSG\t15 hide\n15\t1.0\t2.0\t3.0\t...\n"
    )
    with _import(tmp_path, str(asc), "--trial-start", r"^show (\S+)", "--trial-end", "^hide") as st:
        rec = st.sessions()[0]
        table = st.samples(rec.id)
    assert rec.stimulus_order == ("faces/a.png", "faces/b.png")
    assert table["trial_index"].tolist() == [0, 0, 0, 1, 1, 1]
    assert list(table["phase"]) == ["image"] * 6


def test_imgload_center_and_top_left_rectangles(tmp_path: Path) -> None:
    asc = tmp_path / "r.asc"
    asc.write_text(
        "MSG\t5 DISPLAY_COORDS 0 0 1279 1023\n"
        "SAMPLES\tGAZE\tLEFT\tRATE\t1000.00\n"
        "MSG\t10 TRIALID 1\nMSG\t11 !V IMGLOAD CENTER faces/a.png 400 500 300 400\n"
        "11\t1.0\t2.0\t3.0\t...\nMSG\t12 TRIAL_RESULT 0\n"
        "MSG\t20 TRIALID 2\nMSG\t21 !V IMGLOAD TOP_LEFT faces/b.png 100 50 200 260\n"
        "MSG\t21 !V TRIAL_VAR emotion happy\n21\t1.0\t2.0\t3.0\t...\nMSG\t22 TRIAL_RESULT 0\n"
    )
    (r,) = IMPORTERS["eyelink"].parse(asc, ImportOptions())
    a, b = r.trials
    assert (a.rect.x, a.rect.y, a.rect.w, a.rect.h) == (250.0, 300.0, 300.0, 400.0)
    assert (b.rect.x, b.rect.y, b.rect.w, b.rect.h) == (100.0, 50.0, 200.0, 260.0)
    assert b.variables == {"imgload": "TOP_LEFT", "emotion": "happy"}
    with _import(tmp_path, str(asc)) as st:
        trial_events = [e for e in st.events(1) if e["kind"] == "import_trial"]
    assert trial_events[0]["payload"]["image_rect_px"] == {"x": 250.0, "y": 300.0, "w": 300.0,
                                                           "h": 400.0}  # fmt: skip


def test_tracker_detector_on_a_binocular_recording(tmp_path: Path) -> None:
    """The left eye's EFIX events (the events of ``average``), inside the samples, exactly."""
    with _import(tmp_path, str(BINO)) as st:
        table = st.samples(1)
        ev = next(e for e in st.events(1) if e["kind"] == "import")
    assert ev["payload"]["tracker_events_eye"] == "L"
    efix = _efix(BINO, "L")
    t0, t1 = table["time_ms"][0], table["time_ms"][-1]
    want = [(max(a, t0), min(b, t1)) for a, b in efix if b >= t0 and a <= t1]
    fx = detect_fixations(table, "tracker")
    got = list(zip(fx["onset_ms"].tolist(), fx["offset_ms"].tolist(), strict=True))
    assert got == want and len(want) == len(efix) == 2


def test_a_latin1_file_with_its_encoding(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    asc = tmp_path / "l.asc"
    asc.write_bytes("SAMPLES\tGAZE\tLEFT\tRATE\t1000.00\nMSG\t9 tecnología\n"
                    "10\t1.0\t2.0\t3.0\t...\n".encode("latin-1"))  # fmt: skip
    store = tmp_path / "s.sqlite"
    assert main(["import", "eyelink", str(asc), "--store", str(store), "--resolution",
                 "800x600"]) == 2  # fmt: skip
    assert f"{asc}:2: not UTF-8 text (byte 15 of the line)" in capsys.readouterr().err
    assert main(["import", "eyelink", str(asc), "--store", str(store), "--resolution",
                 "800x600", "--encoding", "latin-1"]) == 0  # fmt: skip
    with SessionStore(store) as st:
        texts = [e["payload"]["text"] for e in st.events(1) if e["kind"] == "message"]
    assert texts == ["tecnología"]

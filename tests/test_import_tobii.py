"""``gazelab import tobii``: Tobii Studio and Pro Lab exports written in their documented
column layouts (many participants in one file, per-eye gaze, media placement, fixation
filter output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.fixations import detect_fixations
from gazelab.gaze.importers import IMPORTERS, ImportFormatError, ImportOptions
from gazelab.settings import Settings

STUDIO_HEADER = [
    "ParticipantName", "RecordingName", "RecordingTimestamp", "StudioEvent", "MediaName",
    "MediaPosX (ADCSpx)", "MediaPosY (ADCSpx)", "MediaWidth", "MediaHeight",
    "GazePointLeftX (ADCSpx)", "GazePointLeftY (ADCSpx)", "ValidityLeft",
    "GazePointRightX (ADCSpx)", "GazePointRightY (ADCSpx)", "ValidityRight",
    "GazePointX (ADCSpx)", "GazePointY (ADCSpx)", "GazePointX (MCSpx)", "GazePointY (MCSpx)",
    "FixationIndex", "GazeEventType", "PupilLeft", "PupilRight",
]  # fmt: skip


def studio_file(path: Path, participants: tuple[str, ...] = ("P01", "P02")) -> dict[str, list]:
    """A Tobii Studio export at 300 Hz: per participant 2 faces (each 30 samples) placed
    off-centre on a 1280×1024 screen; the left eye lost on every 7th sample; fixation
    index k for 10-sample runs; an event row between faces. Returns what was written."""
    lines = ["\t".join(STUDIO_HEADER)]
    written: dict[str, list] = {}
    for p_i, who in enumerate(participants):
        rows = []
        t = 1000.0 * p_i
        fix = 0
        for face, (mx, my) in enumerate([(340, 112), (600, 200)]):
            if face == 1:
                lines.append("\t".join([who, "Rec1", f"{t:.0f}", "KeyPress", *[""] * 19]))
            for i in range(30):
                lx, ly = 500.0 + i + p_i, 400.0 + face
                rx, ry = lx + 10.0, ly + 4.0
                lv = 4 if i % 7 == 3 else 0
                in_fix = (i % 15) < 10
                if in_fix and i % 15 == 0:
                    fix += 1
                cells = [who, "Rec1", f"{t:.0f}", "", f"face{face}.png", str(mx), str(my),
                         "400", "600",
                         "" if lv else f"{lx:.1f}", "" if lv else f"{ly:.1f}", str(lv),
                         f"{rx:.1f}", f"{ry:.1f}", "0",
                         f"{(lx + rx) / 2:.1f}", f"{(ly + ry) / 2:.1f}", "1.0", "2.0",
                         str(fix) if in_fix else "", "Fixation" if in_fix else "Saccade",
                         "3,1", "3,2"]  # fmt: skip
                lines.append("\t".join(cells))
                rows.append((t, None if lv else lx, ly, rx, ry, in_fix))
                t += 10.0 / 3.0
                t = round(t, 3)
        written[who] = rows
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


def test_one_session_per_participant_with_every_sample(tmp_path: Path) -> None:
    f = tmp_path / "study.tsv"
    written = studio_file(f)
    store = tmp_path / "s.sqlite"
    assert main(["import", "tobii", str(f), "--store", str(store), "--eye", "left",
                 "--resolution", "1280x1024", "--screen-mm", "376", "301"]) == 0  # fmt: skip
    with SessionStore(store) as st:
        recs = st.sessions()
        assert [r.participant for r in recs] == ["P01", "P02"]
        for rec in recs:
            rows = written[rec.participant]
            table = st.samples(rec.id)
            assert len(table["time_ms"]) == len(rows) == 60
            assert table["time_ms"].tolist() == [float(f"{r[0]:.0f}") for r in rows]
            want = np.array([np.nan if r[1] is None else r[1] for r in rows])
            assert np.array_equal(table["x"], np.round(want, 1), equal_nan=True)
            assert int(table["valid"].sum()) == 60 - 8  # the left eye lost on 8 samples
            assert rec.stimulus_order == ("face0.png", "face1.png")
            assert table["trial_index"].tolist() == [0] * 30 + [1] * 30
            trials = [e["payload"] for e in st.events(rec.id) if e["kind"] == "import_trial"]
            assert trials[0]["image_rect_px"] == {"x": 340.0, "y": 112.0, "w": 400.0, "h": 600.0}
            assert trials[1]["image_rect_px"] == {"x": 600.0, "y": 200.0, "w": 400.0, "h": 600.0}
            kinds = [e["kind"] for e in st.events(rec.id)]
            assert kinds.count("message") == 1  # the KeyPress row is an event, not a sample
            # Tobii's fixation filter: 4 fixations of 10 samples, as the 'tracker' detector
            assert kinds.count("tracker_fixation") == 4
            fx = detect_fixations(table, "tracker")
            assert fx["n_samples"].tolist() == [10, 10, 10, 10]
            # per-eye columns kept as recorded, pupils read with a decimal comma
            assert table["right_x"][0] == 510.0 + (rec.participant == "P02")
            assert table["left_psize"][0] == 3.1 and table["right_psize"][0] == 3.2
            # the display as given: 1280×1024 px on 376×301 mm (pixels not square)
            d = Settings.from_toml(rec.settings_toml).display
            assert (d.resolution_px, d.width_mm, d.height_mm) == ((1280, 1024), 376.0, 301.0)
            assert d.width_mm / 1280 == 0.29375 and d.height_mm / 1024 == 0.2939453125
            imp = next(e["payload"] for e in st.events(rec.id) if e["kind"] == "import")
            assert imp["mm_per_px"] == [0.29375, 0.2939453125] and imp["screen_mm_given"]


def test_average_of_valid_eyes_and_fallback(tmp_path: Path) -> None:
    f = tmp_path / "study.tsv"
    written = studio_file(f, ("P01",))
    (r,) = IMPORTERS["tobii"].parse(f, ImportOptions())
    rows = written["P01"]
    want = np.array([rx if lx is None else (lx + rx) / 2 for _, lx, _, rx, _, _ in rows])
    assert r.eye == "average" and np.allclose(r.x, want, rtol=0, atol=1e-9)
    assert int(r.valid.sum()) == 60  # the right eye stands in for the lost left one


def test_pro_lab_export_with_sensors_and_microseconds(tmp_path: Path) -> None:
    header = ["Recording timestamp [μs]", "Sensor", "Participant name", "Recording name",
              "Event", "Gaze point X [DACS px]", "Gaze point Y [DACS px]",
              "Presented Media name", "Presented Media position X (DACSpx)",
              "Presented Media position Y (DACSpx)", "Presented Media width (px)",
              "Presented Media height (px)", "Eye movement type", "Eye movement type index"]  # fmt: skip
    rows = [
        ["1000000", "Eye Tracker", "A", "R1", "", "10", "20", "f.png", "5", "6", "7", "8", "Fixation", "1"],
        ["1004000", "Gyroscope", "A", "R1", "", "", "", "", "", "", "", "", "", ""],
        ["1008333", "Eye Tracker", "A", "R1", "", "11", "21", "f.png", "5", "6", "7", "8", "Fixation", "1"],
        ["1010000", "", "A", "R1", "ImageStimulusEnd", "", "", "", "", "", "", "", "", ""],
        ["1016666", "Eye Tracker", "A", "R1", "", "", "", "", "", "", "", "", "EyesNotFound", "1"],
    ]  # fmt: skip
    f = tmp_path / "pl.tsv"
    f.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    (r,) = IMPORTERS["tobii"].parse(f, ImportOptions(screen_px=(1920, 1080)))
    assert r.time_ms.tolist() == [1000.0, 1008.333, 1016.666]
    assert r.valid.tolist() == [True, True, False] and r.fix.tolist() == [True, True, False]
    assert r.participant == "A" and [t.image_id for t in r.trials] == ["f.png"]
    assert [e[1] for e in r.events].count("message") == 1


def test_pro_lab_index_without_its_type_column_is_no_fixation(tmp_path: Path) -> None:
    """Pro Lab's "Eye movement type index" numbers saccades too: without the "Eye movement
    type" column it says nothing about fixations (Studio's FixationIndex does)."""
    header = ["Recording timestamp [ms]", "Participant name", "Recording name",
              "Gaze point X [DACS px]", "Gaze point Y [DACS px]", "Eye movement type index"]  # fmt: skip
    index = [1] * 5 + [1] * 3 + [2] * 5  # fixation 1, saccade 1, fixation 2
    rows = [[str(10 * i), "A", "R1", str(100 + i), "200", str(k)] for i, k in enumerate(index)]
    f = tmp_path / "pl.tsv"
    f.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    (r,) = IMPORTERS["tobii"].parse(f, ImportOptions(screen_px=(1920, 1080)))
    assert r.n == 13 and not r.fix.any()
    assert not [e for e in r.events if e[1] == "tracker_fixation"]


def test_participant_flag_refused_for_a_file_of_many(tmp_path: Path) -> None:
    f = tmp_path / "study.tsv"
    studio_file(f)
    with pytest.raises(ImportFormatError, match="holds 2 participants"):
        IMPORTERS["tobii"].parse(f, ImportOptions(participant="X"))


REC = Path(__file__).parent / "data" / "recordings"


@pytest.mark.parametrize(
    ("name", "samples", "trial", "messages", "fixations"),
    [
        ("tobii_studio_rec01.tsv", 252, ("Augenblicke.jpg", (40.0, 0.0, 1200.0, 1024.0)),
         ["ImageStart", "LeftMouseClick", "ImageEnd"], 4),
        ("tobii_studio_rec04_two_stimuli.tsv", 1231,
         ("SMI Label.bmp", (465.0, 369.0, 351.0, 287.0)),
         ["InstructionStart", "LeftMouseClick", "KeyPress", "InstructionEnd", "ImageStart",
          "ImageEnd"], 72),
    ],
)  # fmt: skip
def test_real_tobii_studio_all_data_export(
    tmp_path: Path,
    monkeypatch,
    name: str,
    samples: int,
    trial: tuple,
    messages: list,
    fixations: int,
) -> None:  # type: ignore[no-untyped-def]
    """Real Tobii Studio 1-2 "All-Data" exports (50 Hz, both eyes, CRLF, decimal comma):
    every gaze row is a sample on the file's ``Timestamp``, ``No media`` is no trial, the
    event rows are messages, and the tracker's fixations are the file's ``FixationIndex``
    runs (counted from 0) from their first to their last sample; both readers agree."""
    import csv

    from gazelab.gaze.importers import tobii

    path = REC / name
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    gaze = [r for r in rows if r["Number"]]
    spans: dict[int, list[float]] = {}
    for r in gaze:
        if r["FixationIndex"]:
            spans.setdefault(int(r["FixationIndex"]), []).append(float(r["Timestamp"]))
    (rec,) = IMPORTERS["tobii"].parse(path, ImportOptions())
    assert rec.n == len(gaze) == samples and rec.participant == path.stem
    assert rec.time_ms.tolist() == [float(r["Timestamp"]) for r in gaze]
    assert rec.rate_hz == 50.0 and rec.eyes_recorded == ("left", "right")
    left_ok = np.array([r["ValidityLeft"] in ("0", "1") for r in gaze])
    want_lx = [float(r["GazePointXLeft"].replace(",", ".")) for r in gaze]
    assert np.array_equal(rec.left_x, np.where(left_ok, want_lx, np.nan), equal_nan=True)
    # a lost eye's pupil is missing, not the export's -1
    want_lp = [float(r["PupilLeft"].replace(",", ".") or "nan") for r in gaze]
    assert np.array_equal(rec.left_pupil, np.where(left_ok, want_lp, np.nan), equal_nan=True)
    assert not np.any(rec.left_pupil[np.isfinite(rec.left_pupil)] < 0)
    assert len(rec.trials) == 1
    image, rect = rec.trials[0].image_id, rec.trials[0].rect
    assert (image, (rect.x, rect.y, rect.w, rect.h)) == trial  # type: ignore[union-attr]
    on_image = [float(r["Timestamp"]) for r in gaze if r["StimuliName"] == trial[0]]
    assert (rec.trials[0].start_ms, rec.trials[0].end_ms) == (on_image[0], on_image[-1])
    assert [e[2]["text"] for e in rec.events if e[1] == "message"] == messages
    fix = [e[2] for e in rec.events if e[1] == "tracker_fixation"]
    assert len(fix) == len(spans) == fixations
    assert [(f["index"], f["onset_ms"], f["offset_ms"]) for f in fix] == [
        (k, ts[0], ts[-1]) for k, ts in sorted(spans.items())
    ]
    assert int(rec.fix.sum()) == sum(map(len, spans.values())) < samples
    monkeypatch.setattr(tobii, "_fast_rows", lambda *a: None)  # the line-by-line reader
    (checked,) = IMPORTERS["tobii"].parse(path, ImportOptions())
    for k in ("time_ms", "x", "y", "left_x", "left_y", "right_x", "right_y", "left_pupil",
              "right_pupil", "fix", "valid"):  # fmt: skip
        assert getattr(rec, k).tobytes() == getattr(checked, k).tobytes(), k
    assert repr(rec.events) == repr(checked.events) and rec.trials == checked.trials
    store = tmp_path / "s.sqlite"
    assert main(["import", "tobii", str(path), "--store", str(store),
                 "--resolution", "1280x1024"]) == 0  # fmt: skip
    with SessionStore(store) as st:
        sessions = st.sessions()
        assert len(sessions) == 1
        sid = sessions[0].id
        assert st.sample_count(sid) == samples
        assert st.samples(sid)["time_ms"].tolist() == rec.time_ms.tolist()

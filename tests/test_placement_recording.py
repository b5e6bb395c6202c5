"""The stimulus where it really was, on the recording side: the BIDS export and its
re-import keep each trial's image rectangle and the screen's mm per pixel in x and y;
data quality measures each axis with its own pixel size; the viewer's replay maps gaze
through the trial's rectangle; ``gazelab sessions`` reads the stored trial quality.

The set-up of tests/test_placement.py: a 1280×1024 screen of 0.25 × 0.35 mm pixels seen
from 60 cm, a portrait image (600 high, 400 wide) shown off-centre at (700, 150),
300 × 450 px."""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from gazelab.analysis.placement import trial_placement
from gazelab.annotation.bids import STIM_COLUMNS, export_session
from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.geometry import DisplayGeometry, StimulusLayout, StimulusPlacement
from gazelab.gaze.quality import (
    TrialQuality,
    angular_distance_deg,
    point_quality,
    validation_run_quality,
)
from gazelab.gaze.trackers.base import SAMPLE_FIELDS, STATE_OK, GazeSample
from gazelab.settings import Settings
from gazelab.tests.test_placement import DIST, MM, RECT, SCREEN, SHAPE

IMAGE_ID = "happy/a.png"
TALL = DisplayGeometry(SCREEN[0] * MM[0], SCREEN[1] * MM[1], SCREEN, DIST)


def write_asc(path: Path, runs: list[tuple[float, float, int]]) -> Path:
    """An EyeLink ASC of one trial showing IMAGE_ID in RECT (500 Hz); ``runs`` are
    ``(x, y, samples)`` of screen px in order."""
    lines = ["MSG\t5 DISPLAY_COORDS 0 0 1279 1023", "SAMPLES\tGAZE\tLEFT\tRATE\t500.00",
             "MSG\t10 TRIALID 1",
             f"MSG\t10 !V IMGLOAD TOP_LEFT {IMAGE_ID} 700 150 300 450"]  # fmt: skip
    t = 10
    for x, y, n in runs:
        for _ in range(n):
            lines.append(f"{t}\t{x}\t{y}\t1000.0\t...")
            t += 2
    lines.append(f"MSG\t{t} TRIAL_RESULT 0")
    path.write_text("\n".join(lines) + "\n")
    return path


def imported_store(tmp_path: Path, runs: list[tuple[float, float, int]], images: str = "") -> Path:
    """A store holding the ASC imported as ``gazelab import`` does (--screen-mm 320 358.4:
    0.25 × 0.35 mm pixels)."""
    store = tmp_path / "s.sqlite"
    argv = ["import", "eyelink", str(write_asc(tmp_path / "r.asc", runs)), "--store", str(store),
            "--screen-mm", "320", "358.4", "--distance-cm", "60"]  # fmt: skip
    if images:
        argv += ["--images", images]
    assert main(argv) == 0
    return store


def read_events(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def write_events(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


# -- (a) the BIDS export and its re-import -----------------------------------------------------
def test_bids_round_trip_keeps_the_rectangle_and_mm_per_px_exactly(tmp_path: Path) -> None:
    store_a = imported_store(tmp_path, [(850.0, 375.0, 200)])
    with SessionStore(store_a) as a:
        (rec,) = a.sessions()
        want = trial_placement(a, rec.id, 0, SHAPE)
        paths = export_session(a, rec.id, tmp_path / "bids")
    assert want.rect_px == RECT and want.mm_per_px == MM
    side = json.loads(paths["gaze_json"].read_text())
    assert side["PixelPitchMillimetresXY"] == [0.25, 0.35]
    assert side["PixelPitchMillimetres"] == pytest.approx(0.30)  # the old key, kept
    assert "StimulusSquarePixels" in side
    events = read_events(paths["events"])
    assert set(STIM_COLUMNS) <= set(events[0])
    in_trial = [e for e in events if e["trial_index"] != "n/a"]
    assert in_trial and all(
        tuple(float(e[c]) for c in STIM_COLUMNS) == RECT for e in in_trial
    )  # every row of the trial, every digit
    assert all(e[c] == "n/a" for e in events if e["trial_index"] == "n/a" for c in STIM_COLUMNS)
    # back into a store: the same rectangle and the same mm per px, bit for bit
    store_b = tmp_path / "b.sqlite"
    assert main(["import", "bids", str(tmp_path / "bids"), "--store", str(store_b)]) == 0
    with SessionStore(store_b) as b:
        (rb,) = b.sessions()
        got = trial_placement(b, rb.id, 0, SHAPE)
    assert got == want
    assert got.rect_px == RECT and got.mm_per_px == MM

    # a file whose events carry no rectangle in their payload (another tool's, or edited)
    # and whose settings say another screen: the stim_* columns and the sidecar's
    # PixelPitchMillimetresXY alone give the placement
    for row in events:
        payload = json.loads(row["payload"])
        payload.pop("image_rect_px", None)
        payload.pop("mm_per_px", None)
        row["payload"] = json.dumps(payload, sort_keys=True)
    write_events(paths["events"], events)
    side["Settings"]["display"].update(width_mm=597.7, height_mm=336.2)  # a 27" screen
    paths["gaze_json"].write_text(json.dumps(side))
    store_c = tmp_path / "c.sqlite"
    assert main(["import", "bids", str(tmp_path / "bids"), "--store", str(store_c)]) == 0
    with SessionStore(store_c) as c:
        (rc,) = c.sessions()
        assert c.events(rc.id)  # the events came along
        moved = trial_placement(c, rc.id, 0, SHAPE)
    assert moved.rect_px == RECT and moved.mm_per_px == MM


def test_an_annotate_session_exports_its_centred_square(tmp_path: Path) -> None:
    """No placement recorded (a session from before): the rectangle of the settings'
    centred square, from the image's own shape (decoded from the session's images)."""
    from gazelab.models.datasets import open_image_set
    from tests.gaze_project import write_gaze_session

    spec = "synthetic:2:7:48"
    ids = open_image_set(spec).ids
    with SessionStore(tmp_path / "s.sqlite", create=True) as st:
        sid = write_gaze_session(st, "P01", spec, {ids[0]: [(10.0, 12.0)]}, {})
        st.add_event(sid, "image", 0.0, trial_index=0)  # its onset, no placement event
        s = Settings.from_toml(st.session(sid).settings_toml)
        paths = export_session(st, sid, tmp_path / "bids")
    layout = StimulusLayout(s.display.resolution_px, s.stimulus.square_px, (48, 48))
    rows = [e for e in read_events(paths["events"]) if e["trial_index"] == "0"]
    assert rows and all(tuple(float(e[c]) for c in STIM_COLUMNS) == layout.image_rect_on_screen
                        for e in rows)  # fmt: skip
    w, h = s.display.resolution_px
    side = json.loads(paths["gaze_json"].read_text())
    assert side["PixelPitchMillimetresXY"] == [s.display.width_mm / w, s.display.height_mm / h]


# -- (b) data quality: each axis with its own pixel size ---------------------------------------
def test_accuracy_of_a_gaze_one_degree_off_in_y_is_one_degree() -> None:
    centre = (640.0, 512.0)
    dy = DIST * math.tan(math.radians(1.0)) / MM[1]  # 49.87 px: 1° on 0.35 mm pixels
    dx = DIST * math.tan(math.radians(1.0)) / MM[0]  # 69.82 px: 1° on 0.25 mm pixels
    n = 50
    placement = StimulusPlacement(RECT, SHAPE, MM, DIST, SCREEN)
    for geometry in (TALL, placement):
        q = point_quality(centre, np.full(n, centre[0]), np.full(n, centre[1] + dy),
                          np.ones(n, bool), geometry)  # fmt: skip
        assert q.accuracy_deg == pytest.approx(1.0, abs=1e-9)
        assert float(angular_distance_deg(centre, (centre[0] + dx, centre[1]), geometry)) == (
            pytest.approx(1.0, abs=1e-9)
        )
    # one mean pitch (0.30 mm) would have said 0.86°, the x pitch (0.25 mm) 0.71°
    assert TALL.px_to_deg(dy) == pytest.approx(0.8572, abs=1e-4)
    # a validation run: a target 1° off in y is 1° off
    t = np.arange(0.0, 1.5, 1 / 500)
    run = validation_run_quality(
        {"local_s": t, "x": np.full(t.size, 640.0), "y": np.full(t.size, 512.0 + dy),
         "valid": np.ones(t.size, bool)},
        [centre], [(0.0, 1.5)], TALL, rate_hz=500.0,
    )  # fmt: skip
    assert run.mean_accuracy_deg == pytest.approx(1.0, abs=1e-9)


def test_trial_precision_of_an_imported_session_uses_its_mm_per_px(tmp_path: Path) -> None:
    """Gaze stepping 0.01° up and down at the screen centre: RMS-S2S 0.01° on the import's
    0.25 × 0.35 mm pixels, even where the settings' display has square pixels."""
    from gazelab.annotation.sessions import compute_trial_quality, quality_geometry

    step = DIST * math.tan(math.radians(0.01)) / MM[1]
    square = DisplayGeometry(SCREEN[0] * 0.3, SCREEN[1] * 0.3, SCREEN, DIST)
    with SessionStore(tmp_path / "s.sqlite", create=True) as st:
        toml = Settings().replace(display=square).to_toml()
        rec = st.create_session("P1", settings_toml=toml, seed=0, image_source="",
                                stimulus_order=["face"], start_local_s=0.0)  # fmt: skip
        st.add_event(rec.id, "import", 0.0, payload={"mm_per_px": list(MM)})
        batch = []
        for i in range(120):
            vals = dict.fromkeys(SAMPLE_FIELDS, math.nan)
            y = 512.0 + (step if i % 2 else 0.0)
            vals.update(time_ms=i * 1000 / 60, local_s=i / 60, x=640.0, y=y, fix=True,
                        state=STATE_OK, valid=True, raw_x=640.0, raw_y=y)  # fmt: skip
            batch.append((GazeSample(**vals), 0, "image"))
        st.add_tagged_samples(rec.id, batch)
        g = quality_geometry(st, rec.id, Settings.from_toml(toml))
        assert (g.width_mm / SCREEN[0], g.height_mm / SCREEN[1]) == pytest.approx(MM, rel=1e-12)
        (q,) = compute_trial_quality(st, rec.id, save=False)
    assert q.rms_s2s_deg == pytest.approx(0.01, rel=1e-6)  # the mean pitch: 0.0086°
    assert q.std_deg == pytest.approx(0.005, rel=1e-3)


# -- (c) the viewer's replay --------------------------------------------------------------------
def test_viewer_replay_maps_the_rectangles_corner_to_the_images_corner(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    from PIL import Image

    from gazelab.analysis.render import Layers, render_view
    from gazelab.app.annotate_screens import to_qimage
    from gazelab.app.qt import application
    from gazelab.app.viewer_project import ViewerProject

    folder = tmp_path / "faces"
    (folder / "happy").mkdir(parents=True)
    Image.fromarray(np.full(SHAPE, 60, np.uint8)).save(folder / IMAGE_ID)
    # 400 ms at the rectangle's centre (a fixation), then 3 samples (6 ms, no fixation) on
    # its top-left corner
    store = imported_store(tmp_path, [(850.0, 375.0, 200), (700.0, 150.0, 3)],
                           images=f"folder:{folder}")  # fmt: skip
    with ViewerProject(store, cache_dir=tmp_path / "cache") as project:
        entry = project.entry(IMAGE_ID)
        (ref,) = entry.trials
        found = project.trial(ref, SHAPE)
        assert found is not None
        _, samples = found
        assert samples[:200, 1:] == pytest.approx(np.tile([200.0, 300.0], (200, 1)))
        assert samples[-1, 1:].tolist() == [0.0, 0.0]  # the corner, exactly
        view = project.view(IMAGE_ID)
        annotator = ref.annotator
        layers = Layers(humans={annotator: True}, model=False, contours=False,
                        human_opacity=0.0, scanpath=True, replay_ms=float(samples[-1, 0]))  # fmt: skip
        rgb = render_view(view, [annotator], layers, scale=1)
    application()
    picture = to_qimage(rgb)
    assert (picture.width(), picture.height()) >= (SHAPE[1], SHAPE[0])
    white = (255, 255, 255)

    def at(x: int, y: int) -> tuple[int, int, int]:
        c = picture.pixelColor(x, y)
        return (c.red(), c.green(), c.blue())

    # the replay's gaze cross is on the image's top-left corner ...
    assert at(2, 0) == white and at(0, 2) == white and at(3, 1) == white
    # ... not where the centred square would have put that sample (230, 119 image px)
    with SessionStore(store) as st:
        s = Settings.from_toml(st.session(ref.session_id).settings_toml)
    wrong = StimulusLayout(SCREEN, s.stimulus.square_px, SHAPE).screen_to_image([[700.0, 150.0]])
    wx, wy = (int(round(v)) for v in wrong[0])
    assert (wx, wy) == (230, 119)
    assert at(wx, wy) == (60, 60, 60) and at(wx + 2, wy) == (60, 60, 60)
    assert at(100, 500) == (60, 60, 60)  # the image itself, untouched


# -- (d) gazelab sessions reads the stored trial quality --------------------------------------
def _session(store: SessionStore, participant: str) -> int:
    """Two trials of 2 s and 1 s of image at 60 Hz; 10 % and 50 % loss measured."""
    rec = store.create_session(participant, settings_toml=Settings().to_toml(), seed=0,
                               image_source="synthetic", stimulus_order=["a", "b"],
                               start_local_s=0.0)  # fmt: skip
    for kind, t, trial in (("image", 1.0, 0), ("blank1", 3.0, 1), ("image", 4.0, 1),
                           ("done", 5.0, None)):  # fmt: skip
        store.add_event(rec.id, kind, t, trial_index=trial)

    def samples(t0: float, n: int, invalid: range = range(0)) -> list[GazeSample]:
        return [GazeSample(time_ms=(t0 + i / 60) * 1000, local_s=t0 + i / 60, x=1280.0,
                           y=720.0, valid=i not in invalid) for i in range(n)]  # fmt: skip

    store.add_samples(rec.id, samples(1.0, 120, range(40, 52)), trial_index=0, phase="image")
    store.add_samples(rec.id, samples(4.0, 30), trial_index=1, phase="image")
    return int(rec.id)


def test_gazelab_sessions_reads_the_stored_trial_quality(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    from gazelab.annotation import sessions

    with SessionStore(tmp_path / "s.sqlite", create=True) as st:
        stored_id = _session(st, "P01")
        fresh_id = _session(st, "P02")
        partial_id = _session(st, "P03")
        measured = sessions.compute_trial_quality(st, fresh_id, save=False)
        assert [q.loss_pct for q in measured] == pytest.approx([10.0, 50.0])
        # values the samples would not give: 25 % and 75 % loss
        st.set_trial_quality(stored_id, [TrialQuality(0, 2.0, 90, 120, 25.0, 0.1, 0.2),
                                         TrialQuality(1, 1.0, 15, 60, 75.0, 0.3, 0.4)])  # fmt: skip
        st.set_trial_quality(partial_id, [TrialQuality(0, 2.0, 90, 120, 25.0, 0.1, 0.2)])
    calls: list[int] = []
    compute = sessions.compute_trial_quality

    def counting(store, session_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(session_id)
        return compute(store, session_id, *args, **kwargs)

    monkeypatch.setattr(sessions, "compute_trial_quality", counting)
    assert main(["sessions", "--store", str(tmp_path / "s.sqlite"), "--csv"]) == 0
    rows = {r["participant"]: r for r in csv.DictReader(capsys.readouterr().out.splitlines())}
    assert calls == [fresh_id, partial_id]  # the stored session's samples are not read
    # stored: (30 + 45) of 180 expected missing; measured: (12 + 30) of 180
    assert float(rows["P01"]["loss_pct"]) == pytest.approx(100.0 * 75 / 180)
    assert float(rows["P02"]["loss_pct"]) == pytest.approx(100.0 * 42 / 180)
    # trial 1 never stored: measured (30 missing), trial 0 stored (30 missing)
    assert float(rows["P03"]["loss_pct"]) == pytest.approx(100.0 * 60 / 180)
    with SessionStore(tmp_path / "s.sqlite") as st:
        assert st.trial_quality(fresh_id) == []  # listing does not write
        calls.clear()
        paths = export_session(st, stored_id, tmp_path / "bids")
    assert calls == []  # the sidecar reads the stored rows too
    trials = json.loads(paths["gaze_json"].read_text())["DataQuality"]["Trials"]
    assert [t["DataLossPercent"] for t in trials] == [25.0, 75.0]
    assert [t["PrecisionRMSS2SDeg"] for t in trials] == [0.1, 0.3]


def test_gaze_rows_unchanged_by_the_stim_columns(tmp_path: Path) -> None:
    """The gaze table is the export's own (the stim columns are in events.tsv only)."""
    store = imported_store(tmp_path, [(850.0, 375.0, 20)])
    with SessionStore(store) as st:
        paths = export_session(st, 1, tmp_path / "bids")
    with gzip.open(paths["gaze"], "rt", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    assert not set(STIM_COLUMNS) & set(header)

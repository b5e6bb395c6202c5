"""Bad input to "the stimulus where it really was": a BIDS ``events.tsv`` whose ``stim_*``
rectangle cannot be, a sidecar whose ``PixelPitchMillimetresXY`` is not two pixel sizes, an
EyeLink ``IMGLOAD`` rectangle of zero or negative size, wholly off the screen or thousands
of screens wide. Each gives one line naming the file (or session and trial), the value and
what to do, exit 2 (never a traceback, never a map of the wrong rectangle); a position
without a size stays the documented fallback (the image at its own size).

Also here: ``compare``'s quality limits measure the trials a half-stored session did not
store (:func:`~gazelab.annotation.sessions.session_trial_quality`, the one function of
``sessions``, the sidecar and ``compare``), and ``annotate``'s validation error is measured
per axis on non-square pixels.

The set-up of tests/test_placement.py: a 1280×1024 screen of 0.25 × 0.35 mm pixels seen
from 60 cm, a portrait image (600 high, 400 wide) shown at (700, 150), 300 × 450 px."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from gazelab.analysis.placement import PlacementError, trial_placement
from gazelab.annotation.bids import STIM_COLUMNS, export_session
from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.geometry import DisplayGeometry, pitch_problem, rect_problem
from gazelab.gaze.quality import TrialQuality
from gazelab.tests.test_placement import DIST, MM, SCREEN, SHAPE
from gazelab.tests.test_placement_downstream import images
from gazelab.tests.test_placement_recording import _session as two_trial_session
from gazelab.tests.test_placement_recording import (
    imported_store,
    read_events,
    write_asc,
    write_events,
)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An imported session (the image at (700, 150), 300 × 450 px) exported as BIDS."""
    tmp = tmp_path_factory.mktemp("export")
    store = imported_store(tmp, [(850.0, 375.0, 50)])
    with SessionStore(store) as st:
        export_session(st, 1, tmp / "bids")
    return tmp / "bids"


def edited_copy(export: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """A copy of the export (the folder, its events.tsv and its gaze sidecar) whose event
    payloads carry no rectangle or mm per px, so the stim_* columns and the sidecar's
    PixelPitchMillimetresXY are all there is."""
    out = tmp / "bids"
    shutil.copytree(export, out)
    (events,) = out.rglob("*_events.tsv")
    (sidecar,) = out.rglob("*_gaze.json")
    rows = read_events(events)
    for row in rows:
        payload = json.loads(row["payload"])
        payload.pop("image_rect_px", None)
        payload.pop("mm_per_px", None)
        row["payload"] = json.dumps(payload, sort_keys=True)
    write_events(events, rows)
    return out, events, sidecar


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Runs ``gazelab argv``: exit 2 and one line on stderr, no traceback; the line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


# -- the BIDS export's stim_* columns -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "why"),
    [("0", "under 1 px"), ("-5", "under 1 px"), ("0.5", "under 1 px"),
     ("1e300", "more than 4 times the 1280x1024 px screen"),
     ("inf", "not a finite number"), ("nan", "not a finite number"),
     ("abc", "not a number")],
)  # fmt: skip
def test_a_bids_stim_w_that_cannot_be_is_refused_at_import(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, why: str
) -> None:
    folder, events, _ = edited_copy(export, tmp_path)
    rows = read_events(events)
    for row in rows:
        if row["trial_index"] != "n/a":
            row["stim_w"] = value
    write_events(events, rows)
    store = tmp_path / "s.sqlite"
    err = refused(["import", "bids", str(folder), "--store", str(store)], capsys)
    assert str(events) in err and "stim_w" in err and value in err and why in err
    if store.exists():  # nothing half-imported
        with SessionStore(store) as st:
            assert st.sessions() == []


def test_a_bids_rectangle_wholly_off_the_screen_is_refused(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, events, _ = edited_copy(export, tmp_path)
    rows = read_events(events)
    for row in rows:
        if row["trial_index"] != "n/a":
            row["stim_x"] = "1280.0"  # the left edge at the screen's right edge
    write_events(events, rows)
    err = refused(["import", "bids", str(folder), "--store", str(tmp_path / "s.sqlite")], capsys)
    assert "1280.0 150.0 300.0 450.0 px lies wholly off the 1280x1024 px screen" in err


def test_a_bids_rectangle_partly_n_a_is_refused(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A position without a size in stim_* (w and h n/a): before, the whole rectangle was
    dropped without a word and the trial became the settings' centred square."""
    folder, events, _ = edited_copy(export, tmp_path)
    rows = read_events(events)
    for row in rows:
        if row["trial_index"] != "n/a":
            row.update(stim_w="n/a", stim_h="n/a")
    write_events(events, rows)
    err = refused(["import", "bids", str(folder), "--store", str(tmp_path / "s.sqlite")], capsys)
    assert str(events) in err and "700.0 150.0 n/a n/a is partly n/a" in err


def test_bids_stim_columns_of_n_a_leave_the_trial_to_its_settings(
    export: Path, tmp_path: Path
) -> None:
    """n/a in all four: no rectangle is known (documented), the settings' centred square."""
    folder, events, _ = edited_copy(export, tmp_path)
    rows = read_events(events)
    for row in rows:
        row.update(dict.fromkeys(STIM_COLUMNS, "n/a"))
    write_events(events, rows)
    store = tmp_path / "s.sqlite"
    assert main(["import", "bids", str(folder), "--store", str(store)]) == 0
    with SessionStore(store) as st:
        p = trial_placement(st, 1, 0, SHAPE)
    assert p.square_px is not None  # annotate's square of the settings, not a guess


@pytest.mark.parametrize("value", [[0, 1], [1], "x", [0.25, 1e300], [True, 0.35], None])
def test_a_sidecar_pixel_pitch_that_is_not_two_sizes_is_refused(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: object
) -> None:
    folder, _, sidecar = edited_copy(export, tmp_path)
    meta = json.loads(sidecar.read_text())
    meta["PixelPitchMillimetresXY"] = value
    sidecar.write_text(json.dumps(meta))
    store = tmp_path / "s.sqlite"
    err = refused(["import", "bids", str(folder), "--store", str(store)], capsys)
    assert str(sidecar) in err and f"PixelPitchMillimetresXY {json.dumps(value)}" in err
    assert "must be two numbers of mm in (0, 100]" in err and "delete the key" in err


def test_a_sidecar_without_pixel_pitch_uses_the_settings_screen(
    export: Path, tmp_path: Path
) -> None:
    folder, _, sidecar = edited_copy(export, tmp_path)
    meta = json.loads(sidecar.read_text())
    del meta["PixelPitchMillimetresXY"]
    sidecar.write_text(json.dumps(meta))
    store = tmp_path / "s.sqlite"
    assert main(["import", "bids", str(folder), "--store", str(store)]) == 0
    with SessionStore(store) as st:
        p = trial_placement(st, 1, 0, SHAPE)
    # the exported settings' screen: 320 × 358.4 mm over 1280 × 1024 px
    assert p.mm_per_px == pytest.approx(MM, rel=1e-12)
    assert p.rect_px == (700.0, 150.0, 300.0, 450.0)


# -- an EyeLink IMGLOAD rectangle ------------------------------------------------------------------
def asc_with(tmp_path: Path, imgload: str) -> Path:
    """tests/test_placement_recording.py's ASC with its IMGLOAD line's arguments replaced."""
    asc = write_asc(tmp_path / "r.asc", [(850.0, 375.0, 50)])
    text = asc.read_text().replace("TOP_LEFT happy/a.png 700 150 300 450", imgload)
    asc.write_text(text)
    return asc


BAD_IMGLOAD = [
    ("TOP_LEFT happy/a.png 700 150 0 0", (700, 150, 0, 0), "has a width or height under 1 px"),
    ("TOP_LEFT happy/a.png 700 150 -300 450", (700, 150, -300, 450),
     "has a width or height under 1 px"),
    ("TOP_LEFT happy/a.png 5000 4000 300 450", (5000, 4000, 300, 450),
     "lies wholly off the 1280x1024 px screen"),
    ("TOP_LEFT happy/a.png 700 150 1e12 450", (700, 150, 1e12, 450),
     "is more than 4 times the 1280x1024 px screen"),
]  # fmt: skip
ASC_ARGS = ["--screen-mm", "320", "358.4", "--distance-cm", "60"]


@pytest.mark.parametrize(("imgload", "rect", "why"), BAD_IMGLOAD)
def test_an_imgload_rectangle_that_cannot_be_is_refused_at_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], imgload: str,
    rect: tuple[float, float, float, float], why: str,
) -> None:  # fmt: skip
    """Before: a size of 0 or -300 was taken as the image's own size (a map of another
    rectangle), 1e12 px wide ran out of memory with a traceback, and off the screen gave
    an empty map. Now the import refuses the file in one line and writes nothing."""
    store = tmp_path / "s.sqlite"
    asc = asc_with(tmp_path, imgload)
    err = refused(["import", "eyelink", str(asc), "--store", str(store), *ASC_ARGS], capsys)
    x, y, w, h = rect
    assert (
        f"{asc}: trial 0 (happy/a.png): the image rectangle x={x:g} y={y:g} w={w:g} h={h:g}" in err
    )
    assert why in err and "nothing imported" in err
    if store.exists():
        with SessionStore(store) as st:
            assert st.sessions() == []


def test_a_screen_pixel_size_that_cannot_be_is_refused_at_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.sqlite"
    asc = asc_with(tmp_path, "TOP_LEFT happy/a.png 700 150 300 450")
    err = refused(["import", "eyelink", str(asc), "--store", str(store),
                   "--screen-mm", "1e9", "358.4", "--distance-cm", "60"], capsys)  # fmt: skip
    assert str(asc) in err and "must be two numbers of mm in (0, 100]" in err
    assert "--screen-mm" in err and "nothing imported" in err


@pytest.mark.parametrize(("imgload", "rect", "why"), BAD_IMGLOAD)
def test_a_stored_rectangle_that_cannot_be_stops_every_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], imgload: str,
    rect: tuple[float, float, float, float], why: str,
) -> None:  # fmt: skip
    """A store written before the import checked rectangles (or edited since): the
    trial's placement names session, trial, image and values, and no map is written."""
    import sqlite3

    store, root = tmp_path / "s.sqlite", images(tmp_path)
    good = asc_with(tmp_path, "TOP_LEFT happy/a.png 700 150 300 450")
    assert main(["import", "eyelink", str(good), "--store", str(store), *ASC_ARGS]) == 0
    capsys.readouterr()
    with sqlite3.connect(store) as db:
        ((eid, payload),) = db.execute(
            "SELECT id, payload FROM events WHERE kind = 'import_trial'"
        ).fetchall()
        p = json.loads(payload)
        p["image_rect_px"] = dict(zip("xywh", (float(v) for v in rect), strict=True))
        db.execute("UPDATE events SET payload = ? WHERE id = ?", (json.dumps(p), eid))
    with SessionStore(store) as st, pytest.raises(PlacementError, match="session 1 trial 0"):
        trial_placement(st, 1, 0, SHAPE)
    err = refused(["heatmaps", "--store", str(store), "--session", "1",
                   "--images", f"folder:{root}", "--out", str(tmp_path / "hm")], capsys)  # fmt: skip
    assert "session 1 trial 0 (happy/a.png): the recorded image rectangle" in err
    assert why in err and "import it again" in err
    assert not (tmp_path / "hm" / "session1_heatmaps.npz").exists()


@pytest.mark.parametrize(
    ("imgload", "rect"),
    [
        ("TOP_LEFT happy/a.png 700 150", (700.0, 150.0, 400.0, 600.0)),
        ("CENTER happy/a.png 850 375", (650.0, 75.0, 400.0, 600.0)),
    ],
)
def test_an_imgload_position_without_a_size_is_the_image_at_its_own_size(
    tmp_path: Path, imgload: str, rect: tuple[float, float, float, float]
) -> None:
    """The documented fallback (Data Viewer's IMGLOAD without width and height)."""
    store = tmp_path / "s.sqlite"
    argv = ["import", "eyelink", str(asc_with(tmp_path, imgload)), "--store", str(store),
            "--screen-mm", "320", "358.4", "--distance-cm", "60"]  # fmt: skip
    assert main(argv) == 0
    with SessionStore(store) as st:
        assert trial_placement(st, 1, 0, SHAPE).rect_px == rect


def test_rect_and_pitch_checks() -> None:
    assert rect_problem((700.0, 150.0, 300.0, 450.0), SCREEN) is None
    assert rect_problem((-200.0, -100.0, 300.0, 450.0), SCREEN) is None  # partly off: kept
    assert rect_problem((0.0, 0.0, 4 * 1280.0, 4 * 1024.0), SCREEN) is None
    assert rect_problem((0.0, 0.0, 4 * 1280.0 + 1, 450.0), SCREEN) is not None
    assert rect_problem((-300.0, 150.0, 300.0, 450.0), SCREEN) is not None  # right edge at 0
    assert rect_problem((700.0, 150.0, 1.0, 1.0), SCREEN) is None
    assert rect_problem((700.0, 150.0, math.nan, 450.0), SCREEN) is not None
    assert rect_problem((700.0, 150.0, True, 450.0), SCREEN) is not None  # type: ignore[arg-type]
    assert pitch_problem((0.25, 0.35)) is None and pitch_problem([100, 0.1]) is None
    for bad in ([0, 1], [1], "x", [0.25, 100.5], [0.25, -0.3], [math.inf, 1], [None, 1], {}):
        assert pitch_problem(bad) == "must be two numbers of mm in (0, 100]"


# -- compare's quality limits on a half-stored session -------------------------------------------
def test_compare_measures_the_trials_a_half_stored_session_did_not_store(tmp_path: Path) -> None:
    """Trial 0's quality is stored (25 % loss), trial 1's is not and its samples are all
    invalid: measured, 100 % loss, left out. Before, the stored row alone was taken as the
    session's (a trial the recording stopped before storing was never measured)."""
    from gazelab.annotation.sessions import quality_exclusions, session_trial_quality
    from gazelab.settings import QualitySettings

    with SessionStore(tmp_path / "s.sqlite", create=True) as st:
        sid = two_trial_session(st, "P01")
        st.set_trial_quality(sid, [TrialQuality(0, 2.0, 90, 120, 25.0, 0.1, 0.2)])
        samples = st.samples_by_trial(sid, phase="image")
        samples[1]["valid"][:] = False  # what compare read: trial 1 lost every sample
        limits = QualitySettings(max_trial_loss_pct=50.0)
        assert quality_exclusions(st, sid, None, limits, samples=samples) == {
            1: "data loss 100.0% > 50.0%"
        }
        q = session_trial_quality(st, sid, samples=samples)
        assert [(t.trial_index, t.loss_pct) for t in q] == [(0, 25.0), (1, 100.0)]
        # trial 1 shown but not one sample read: measured as all lost, not skipped
        del samples[1]
        assert quality_exclusions(st, sid, None, limits, samples=samples) == {
            1: "data loss 100.0% > 50.0%"
        }
        # the stored rows alone when they cover every trial shown (samples not measured)
        st.set_trial_quality(sid, [TrialQuality(0, 2.0, 90, 120, 25.0, 0.1, 0.2),
                                   TrialQuality(1, 1.0, 60, 60, 0.0, 0.1, 0.2)])  # fmt: skip
        assert quality_exclusions(st, sid, None, limits, samples=samples) == {}


def test_compare_takes_its_exclusions_from_the_strict_function() -> None:
    """One function for the stored-or-measured trial quality: compare's path is it."""
    import gazelab.annotation.sessions as sessions

    assert not hasattr(sessions, "stored_trial_quality")


# -- annotate's own validation error, per axis ------------------------------------------------------
def test_annotate_validation_error_one_degree_off_in_y_is_one_degree() -> None:
    from gazelab.annotation.session import validation_errors_deg

    tall = DisplayGeometry(SCREEN[0] * MM[0], SCREEN[1] * MM[1], SCREEN, DIST)
    dy = DIST * math.tan(math.radians(1.0)) / MM[1]  # 1° below the centre target, px
    dx = DIST * math.tan(math.radians(1.0)) / MM[0]  # 1° right of it
    t = np.arange(60) / 60.0
    n = t.size
    samples = {"local_s": np.concatenate([t, t + 1.0]),
               "x": np.concatenate([np.full(n, 640.0), np.full(n, 640.0 + dx)]),
               "y": np.concatenate([np.full(n, 512.0 + dy), np.full(n, 512.0)]),
               "valid": np.ones(2 * n, bool)}  # fmt: skip
    errs = validation_errors_deg(samples, [(640.0, 512.0)] * 2, [(0.0, 1.0), (1.0, 2.0)], tall)
    assert errs == pytest.approx([1.0, 1.0], abs=1e-9)
    # one mean pitch (0.30 mm) said 0.857° and 1.200°
    mean = [tall.px_to_deg(dy), tall.px_to_deg(dx)]
    assert mean == pytest.approx([0.857, 1.200], abs=1e-3)


@pytest.mark.parametrize("rect", [[700, 150, 300, 450], "700 150 300 450", 7])
def test_a_bids_payload_rectangle_that_is_not_an_object_is_refused_where_read(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], rect: object
) -> None:
    """A hand-edited payload's ``image_rect_px`` that is not ``{x, y, w, h}``: before, the
    trial silently became the settings' centred square (the stim_* columns ignored)."""
    folder, events, _ = edited_copy(export, tmp_path)
    rows = read_events(events)
    for row in rows:
        payload = json.loads(row["payload"])
        if row["trial_type"] == "import_trial":
            payload["image_rect_px"] = rect
        row["payload"] = json.dumps(payload, sort_keys=True)
    write_events(events, rows)
    store = tmp_path / "s.sqlite"
    assert main(["import", "bids", str(folder), "--store", str(store)]) == 0
    capsys.readouterr()
    with SessionStore(store) as st, pytest.raises(PlacementError, match="is not {x, y, w, h}"):
        trial_placement(st, 1, 0, SHAPE)
    err = refused(["export", "--store", str(store), "--out", str(tmp_path / "again")], capsys)
    assert f"session 1 trial 0 (happy/a.png): the recorded image rectangle {rect!r}" in err


def test_a_screen_of_absurd_pixel_size_stops_the_maps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stored pixel size of 781 m (--screen-mm 1e9 358.4, refused at import now, in a
    store written before) made a kernel of 7e-5 px (a map of bare points). The trial's
    placement refuses a pixel over 100 mm, naming it."""
    import sqlite3

    store, root = tmp_path / "s.sqlite", images(tmp_path)
    argv = ["import", "eyelink", str(write_asc(tmp_path / "r.asc", [(850.0, 375.0, 50)])),
            "--store", str(store), "--screen-mm", "320", "358.4", "--distance-cm", "60"]  # fmt: skip
    assert main(argv) == 0
    with sqlite3.connect(store) as db:
        ((eid, payload),) = db.execute(
            "SELECT id, payload FROM events WHERE kind = 'import'"
        ).fetchall()
        p = json.loads(payload)
        p["mm_per_px"] = [781250.0, 0.35]
        db.execute("UPDATE events SET payload = ? WHERE id = ?", (json.dumps(p), eid))
    capsys.readouterr()
    err = refused(["heatmaps", "--store", str(store), "--session", "1",
                   "--images", f"folder:{root}", "--out", str(tmp_path / "hm")], capsys)  # fmt: skip
    assert "session 1 trial 0 (happy/a.png): the screen's pixel size 781250 x 0.35 mm" in err
    assert "(0, 100]" in err and "--screen-mm W H" in err

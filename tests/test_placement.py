"""The stimulus where it really was: an image's rectangle on screen, non-square pixels,
the elliptical heatmap kernel, and one reader of a trial's placement for imported and
annotated sessions."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pytest

from gazelab.analysis.human import trial_gaze
from gazelab.analysis.placement import SessionPlacements, trial_placement
from gazelab.annotation.store import SessionStore
from gazelab.gaze.geometry import (
    PLACEMENT_EVENT,
    DisplayGeometry,
    StimulusLayout,
    StimulusPlacement,
)
from gazelab.gaze.heatmaps import HeatmapKernel, fixation_heatmap, fixation_heatmap_naive
from gazelab.gaze.trackers.base import SAMPLE_FIELDS, STATE_OK, GazeSample
from gazelab.settings import Settings

# A 1280×1024 screen whose pixels are 0.25 mm wide and 0.35 mm high (clearly not square),
# seen from 60 cm; a portrait image (600 high, 400 wide) shown off-centre at (700, 150),
# 300×450 px (0.75 screen px per image px in both axes).
SCREEN = (1280, 1024)
MM = (0.25, 0.35)
DIST = 600.0
RECT = (700.0, 150.0, 300.0, 450.0)
SHAPE = (600, 400)


def placement(rect: tuple[float, float, float, float] = RECT) -> StimulusPlacement:
    return StimulusPlacement(rect, SHAPE, MM, DIST, SCREEN)


# -- the record --------------------------------------------------------------------------
def test_centred_square_is_stimulus_layouts_numbers_bit_for_bit() -> None:
    display = DisplayGeometry()  # the reference 27" 2560×1440 at 70 cm
    rng = np.random.default_rng(1)
    xy = rng.uniform(-100, 2700, size=(500, 2))
    for shape in ((480, 640), (640, 480), (1200, 1200), (37, 1001)):
        layout = StimulusLayout(display.resolution_px, 1200, shape)
        p = StimulusPlacement.centred_square(display, 1200, shape)
        assert p.rect_px == layout.image_rect_on_screen
        assert p.scale_xy == (layout.scale, layout.scale)
        assert np.array_equal(p.screen_to_image(xy), layout.screen_to_image(xy))
        assert np.array_equal(p.image_to_screen(xy), layout.image_to_screen(xy))
        assert np.array_equal(p.inside_image(xy), layout.inside_image(xy))
        # the kernel: the same c and radius as the display's (square pixels, mean pitch)
        k0 = HeatmapKernel.from_geometry(display)
        k = HeatmapKernel.from_placement(p)
        assert k.circular and (k.c, k.radius) == (k0.c, k0.radius)
        assert k.for_image(p) == k0.scaled(1.0 / layout.scale)


def test_conversions_of_an_off_centre_portrait_image() -> None:
    p = placement()
    assert p.scale_xy == (0.75, 0.75)
    # corners and centre of the rectangle -> the image's corners and centre
    screen = [[700, 150], [1000, 600], [850, 375], [700 + 0.75, 150 + 1.5]]
    assert p.screen_to_image(screen).tolist() == [[0, 0], [400, 600], [200, 300], [1, 2]]
    assert np.allclose(p.image_to_screen(p.screen_to_image(screen)), screen)
    assert p.inside_image([[850, 375], [699.9, 375], [850, 600.0]]).tolist() == [
        True, False, False,
    ]  # fmt: skip
    # a stretched rectangle (any aspect): each axis on its own
    q = placement((-50.0, 900.0, 200.0, 600.0))  # partly off-screen too
    assert q.scale_xy == (0.5, 1.0)
    assert q.screen_to_image([[50.0, 1200.0]]).tolist() == [[200.0, 300.0]]


def test_degrees_per_pixel_in_x_and_y() -> None:
    p = placement()
    dx, dy = p.deg_per_px_xy()
    # 2·atan(mm / 2d), by hand: 0.25 and 0.35 mm at 600 mm
    assert dx == pytest.approx(math.degrees(2 * math.atan(0.25 / 1200)), rel=1e-15)
    assert dy == pytest.approx(math.degrees(2 * math.atan(0.35 / 1200)), rel=1e-15)
    assert dx == pytest.approx(0.0238732, abs=1e-7) and dy == pytest.approx(0.0334225, abs=1e-7)
    ix, iy = p.deg_per_image_px_xy()
    assert (ix, iy) == pytest.approx((dx * 0.75, dy * 0.75))
    sx, sy = p.px_per_deg_xy(5.0)
    assert (sx, sy) == pytest.approx((209.5725259608579, 149.69466140061277), rel=1e-12)


@pytest.mark.parametrize("bad", [(0.0, 0.0, 0.0, 10.0), (0.0, 0.0, 10.0, math.nan)])
def test_a_rectangle_without_size_is_refused(bad: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="positive size"):
        StimulusPlacement(bad, SHAPE, MM, DIST, SCREEN)


# -- the heatmap on non-square pixels ----------------------------------------------------
def hand_kernel_image_px() -> tuple[float, float, float, float]:
    """c_x, c_y, r_x, r_y in image px, by hand: span = 2 d tan(2.5°) / mm, c = 0.4 span /
    2√(2 ln 2), r = span / 2, divided by the image's scale 0.75."""
    span_mm = 2 * DIST * math.tan(math.radians(2.5))
    fwhm = 2 * math.sqrt(2 * math.log(2))
    sx, sy = span_mm / MM[0], span_mm / MM[1]
    return (0.4 * sx / fwhm / 0.75, 0.4 * sy / fwhm / 0.75, sx / 2 / 0.75, sy / 2 / 0.75)


def test_kernel_is_an_ellipse_in_pixels() -> None:
    p = placement()
    k = HeatmapKernel.from_placement(p).for_image(p)
    cx, cy, rx, ry = hand_kernel_image_px()
    assert not k.circular
    assert k.c_xy == pytest.approx((cx, cy), rel=1e-12)
    assert k.radius_xy == pytest.approx((rx, ry), rel=1e-12)
    assert k.c_xy == pytest.approx((47.4652, 33.9037), abs=1e-4)
    assert k.radius_xy == pytest.approx((139.7150, 99.7964), abs=1e-4)


def test_heatmap_of_an_off_centre_image_on_non_square_pixels_by_hand() -> None:
    p = placement()
    k = HeatmapKernel.from_placement(p).for_image(p)
    fix_screen = np.array([[850.0, 375.0]])  # the rectangle's centre
    pts = p.screen_to_image(fix_screen)
    assert pts.tolist() == [[200.0, 300.0]]
    hm = k.heatmap(pts, SHAPE)
    cx, cy, rx, ry = hand_kernel_image_px()

    def hand(x: int, y: int) -> float:
        dx, dy = x - 200.0, y - 300.0
        if (dx / rx) ** 2 + (dy / ry) ** 2 > 1.0:
            return 0.0
        return math.exp(-(dx * dx / (2 * cx * cx) + dy * dy / (2 * cy * cy)))

    for x, y in [(200, 300), (230, 300), (200, 330), (260, 350), (290, 300), (200, 390),
                 (310, 300), (300, 380), (200, 410)]:  # fmt: skip
        assert hm[y, x] == pytest.approx(hand(x, y), rel=1e-12, abs=1e-300), (x, y)
    assert hm[300, 230] == pytest.approx(0.81894, abs=1e-5)  # exp(-900 / (2·47.465²))
    assert hm[330, 200] == pytest.approx(0.67605, abs=1e-5)  # exp(-900 / (2·33.904²))
    # 110 px out: inside the ellipse along x, outside along y (a circle would treat both alike)
    assert hm[300, 310] > 0.0 and hm[410, 200] == 0.0
    # cut by the ellipse where the Gaussian alone is still 0.0067
    assert hm[380, 300] == 0.0
    # the contour's extent: 2·floor(r)+1 pixels on the centre row and column
    mask = hm > 0
    cols, rows = np.flatnonzero(mask[300]), np.flatnonzero(mask[:, 200])
    assert (cols[0], cols[-1], cols.size) == (61, 339, 279)  # 200 ± 139 (r_x = 139.7)
    assert (rows[0], rows[-1], rows.size) == (201, 399, 199)  # 300 ± 99 (r_y = 99.8)
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (61, 339, 201, 399)


def test_elliptical_heatmap_matches_the_naive_sum() -> None:
    rng = np.random.default_rng(3)
    pts = rng.uniform(-30, 230, size=(40, 2))
    wts = rng.uniform(0.5, 2.0, size=40)
    fast = fixation_heatmap(pts, (180, 200), 12.0, 40.0, wts, c_y=7.0, radius_y=23.5)
    slow = fixation_heatmap_naive(pts, (180, 200), 12.0, 40.0, wts, c_y=7.0, radius_y=23.5)
    assert np.allclose(fast, slow, rtol=1e-12, atol=1e-12)
    # the support agrees except where a pixel lies on the ellipse to round-off
    assert np.count_nonzero((fast > 0) != (slow > 0)) <= 2


def test_equal_widths_take_the_circles_path_bit_for_bit() -> None:
    rng = np.random.default_rng(4)
    pts = rng.uniform(0, 300, size=(60, 2))
    a = fixation_heatmap(pts, (300, 300), 20.0, 50.0)
    b = fixation_heatmap(pts, (300, 300), 20.0, 50.0, c_y=20.0, radius_y=50.0)
    c = HeatmapKernel(20.0, 50.0, 20.0, 50.0).heatmap(pts, (300, 300))
    assert np.array_equal(a, b) and np.array_equal(a, c)


# -- one reader for imported and annotated sessions --------------------------------------
def imported_like_session(
    store: SessionStore, rect: tuple[float, float, float, float] | None, gaze: tuple[float, float]
) -> int:
    """A session as ``gazelab import`` writes one: settings, an ``import`` event with mm per
    px, an ``import_trial`` event with the image's rectangle, 300 ms of image-phase samples
    at ``gaze`` (300 Hz)."""
    display = DisplayGeometry(SCREEN[0] * MM[0], SCREEN[1] * MM[1], SCREEN, DIST)
    toml = dataclasses.replace(Settings(), display=display).to_toml()
    rec = store.create_session("P1", settings_toml=toml, seed=0, image_source="",
                               stimulus_order=["face"], start_local_s=0.0)  # fmt: skip
    sid = int(rec.id)
    store.add_event(sid, "import", 0.0, payload={"mm_per_px": list(MM), "format": "tobii"})
    store.add_event(sid, "import_trial", 0.0, trial_index=0, payload={
        "image_id": "face", "image_rect_px": None if rect is None else dict(
            zip("xywh", rect, strict=True)),
    })  # fmt: skip
    batch = []
    for i in range(90):
        t = i * 1000.0 / 300.0
        vals = dict.fromkeys(SAMPLE_FIELDS, math.nan)
        vals.update(time_ms=t, local_s=t / 1000.0, x=gaze[0], y=gaze[1], fix=True,
                    state=STATE_OK, valid=True, raw_x=gaze[0], raw_y=gaze[1])  # fmt: skip
        batch.append((GazeSample(**vals), 0, "image"))
    store.add_tagged_samples(sid, batch)
    return sid


def test_imported_gaze_lands_where_the_image_really_was(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "s.sqlite", create=True) as store:
        centre = imported_like_session(store, RECT, (850.0, 375.0))
        shifted = imported_like_session(store, (800.0, 100.0, 300.0, 450.0), (850.0, 375.0))
        none = imported_like_session(store, None, (850.0, 375.0))
        shapes = {"face": SHAPE}
        p = trial_placement(store, centre, 0, SHAPE)
        assert p == placement()  # the rectangle and the import's mm per px
        (tg,) = trial_gaze(store, centre, shapes)
        assert tg.points("events", "image") == pytest.approx(np.array([[200.0, 300.0]]))
        assert tg.fixations["x_img"] == pytest.approx([200.0])
        assert tg.fixations["y_img"] == pytest.approx([300.0])
        assert bool(tg.fixations["in_image"][0])
        # the image's own kernel is the ellipse of the hand computation
        assert tg.image_kernel().c_xy == pytest.approx(hand_kernel_image_px()[:2], rel=1e-12)
        hm = tg.heatmap_in("image")
        assert hm.shape == SHAPE and hm[300, 200] == pytest.approx(1.0)
        assert np.flatnonzero(hm[300] > 0).size == 279
        # the rectangle 100 px right and 50 px up: the same gaze is 133.3 px left, 66.7 down
        (ts,) = trial_gaze(store, shifted, shapes)
        assert ts.points("events", "image") == pytest.approx(
            np.array([[50.0 / 0.75, 275.0 / 0.75]])
        )
        # no rectangle in the file: the centred square of the settings, as before
        (tn,) = trial_gaze(store, none, shapes)
        s = Settings.from_toml(store.session(none).settings_toml)
        layout = StimulusLayout(SCREEN, s.stimulus.square_px, SHAPE)
        assert tn.placement == StimulusPlacement.centred_square(s.display, s.stimulus.square_px,
                                                                SHAPE)  # fmt: skip
        assert np.array_equal(tn.points("events", "image"),
                              layout.screen_to_image([[850.0, 375.0]]))  # fmt: skip


def test_a_rectangle_with_a_position_only_is_the_image_at_its_own_size(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "s.sqlite", create=True) as store:
        sid = imported_like_session(store, None, (0.0, 0.0))
        for ti, mode in ((0, "CENTER"), (1, "TOP_LEFT")):
            store.add_event(sid, "import_trial", 1.0, trial_index=ti, payload={
                "image_rect_px": {"x": 640.0, "y": 512.0, "w": None, "h": None},
                "variables": {"imgload": mode}})  # fmt: skip
        places = SessionPlacements.read(store, sid)
        assert places.for_trial(0, SHAPE).rect_px == (440.0, 212.0, 400.0, 600.0)
        assert places.for_trial(1, SHAPE).rect_px == (640.0, 512.0, 400.0, 600.0)


def test_annotates_recorded_square_reads_back_as_the_centred_square(tmp_path: Path) -> None:
    from gazelab.annotation.controller import AnnotationSession
    from gazelab.annotation.protocol import Phase
    from gazelab.annotation.session import SessionConfig

    s = Settings()
    s = dataclasses.replace(
        s,
        display=DisplayGeometry.from_diagonal(24.0, (800, 600), 650.0),
        stimulus=dataclasses.replace(s.stimulus, square_px=400),
        protocol=dataclasses.replace(s.protocol, blank1_ms=20, cross_ms=20, blank2_ms=20),
        tracker=dataclasses.replace(s.tracker, kind="none"),
    )
    cfg = SessionConfig(tmp_path / "s.sqlite", "P1", "synthetic:2:1:64", s)
    ctl = AnnotationSession(cfg)
    try:
        ctl.start_trials()
        deadline = time.monotonic() + 10
        while ctl.protocol.phase is not Phase.IMAGE and time.monotonic() < deadline:
            ctl.tick()
            time.sleep(0.005)
        assert ctl.protocol.phase is Phase.IMAGE
        iid = ctl.protocol.image_id
        assert iid is not None
        shape = ctl.image_shape(iid)
    finally:
        ctl.finish()
    with SessionStore(cfg.store) as st:
        events = [e for e in st.events(ctl.session_id) if e["kind"] == PLACEMENT_EVENT]
        assert len(events) == 1 and events[0]["trial_index"] == 0
        payload = events[0]["payload"]
        want = StimulusPlacement.centred_square(s.display, 400, shape, (800, 600))
        assert payload["image_rect_px"] == dict(zip("xywh", want.rect_px, strict=True))
        assert payload["image_id"] == iid and payload["square_px"] == 400
        got = trial_placement(st, ctl.session_id, 0, shape)
        assert got == want
        layout = StimulusLayout((800, 600), 400, shape)
        assert got.rect_px == layout.image_rect_on_screen


def test_an_imported_eyelink_file_maps_gaze_into_its_imgload_rectangle(tmp_path: Path) -> None:
    """End to end through ``gazelab import``: 400 ms at the rectangle's centre and 400 ms at
    its top-left quarter point land at the image's centre and quarter point."""
    from gazelab.app.cli import main

    lines = ["MSG\t5 DISPLAY_COORDS 0 0 1279 1023", "SAMPLES\tGAZE\tLEFT\tRATE\t500.00",
             "MSG\t10 TRIALID 1", "MSG\t10 !V IMGLOAD TOP_LEFT faces/a.png 700 150 300 450"]  # fmt: skip
    t = 10
    for x, y in ((850.0, 375.0), (775.0, 262.5)):
        for _ in range(200):
            lines.append(f"{t}\t{x}\t{y}\t1000.0\t...")
            t += 2
    lines.append(f"MSG\t{t} TRIAL_RESULT 0")
    asc = tmp_path / "r.asc"
    asc.write_text("\n".join(lines) + "\n")
    store = tmp_path / "s.sqlite"
    argv = ["import", "eyelink", str(asc), "--store", str(store), "--screen-mm", "320", "358.4",
            "--distance-cm", "60"]  # fmt: skip
    assert main(argv) == 0
    with SessionStore(store) as st:
        (rec,) = st.sessions()
        p = trial_placement(st, rec.id, 0, SHAPE)
        assert p.rect_px == RECT and p.mm_per_px == pytest.approx(MM, rel=1e-12)
        (tg,) = trial_gaze(st, rec.id, {"faces/a.png": SHAPE})
    pts = tg.points("events", "image")
    assert len(pts) == 2
    assert pts == pytest.approx(np.array([[200.0, 300.0], [100.0, 150.0]]))
    assert tg.image_kernel().c_xy == pytest.approx(hand_kernel_image_px()[:2], rel=1e-12)

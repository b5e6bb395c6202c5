"""The image where it really was, downstream: ``compare``, ``gazelab heatmaps``, human masks
and AOIs of imported sessions use each trial's own placement and kernel (an ellipse in
image pixels on non-square screen pixels), checked against the hand computation of
tests/test_placement.py; an ``annotate`` session (the centred square) gives what the
centred-square formulas always gave, bit for bit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.analysis.aoi import AOI, comparison_aoi_rows
from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.gaze.geometry import PLACEMENT_EVENT, StimulusLayout, StimulusPlacement
from gazelab.gaze.heatmaps import HeatmapKernel, fixation_heatmap
from gazelab.settings import AnalysisSettings, Settings
from gazelab.tests.test_placement import DIST, MM, RECT, SCREEN, SHAPE, hand_kernel_image_px

IMAGE = "happy/a.png"  # a portrait image, 600 high and 400 wide
# P1 (tests/test_placement.py): the image at RECT (0.75 screen px per image px) on pixels
# 0.25 mm wide and 0.35 mm high; P2: the image at its own size at (100, 50) on another
# screen of square 0.25 mm pixels (a circle in image px, through the placement).
P1_FIX = [(200.0, 300.0), (100.0, 150.0)]  # image px
P2_RECT = (100.0, 50.0, 400.0, 600.0)
P2_MM = (0.25, 0.25)
P2_FIX = [(300.0, 450.0), (200.0, 300.0)]


def images(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "faces"
    (root / "happy").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 255, size=(*SHAPE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / IMAGE)
    return root


def write_asc(path: Path, rect: tuple[float, float, float, float],
              fixations: list[tuple[float, float]]) -> Path:  # fmt: skip
    """An EyeLink ASC file: one trial showing IMAGE at ``rect`` (IMGLOAD TOP_LEFT x y w h),
    400 ms of 500 Hz samples at each fixation (image px, mapped to the screen by hand)."""
    x0, y0, w, h = rect
    sx, sy = w / SHAPE[1], h / SHAPE[0]
    lines = ["MSG\t5 DISPLAY_COORDS 0 0 1279 1023", "SAMPLES\tGAZE\tLEFT\tRATE\t500.00",
             "MSG\t10 TRIALID 1",
             f"MSG\t10 !V IMGLOAD TOP_LEFT {IMAGE} {x0:g} {y0:g} {w:g} {h:g}"]  # fmt: skip
    t = 10
    for xi, yi in fixations:
        for _ in range(200):
            lines.append(f"{t}\t{x0 + xi * sx}\t{y0 + yi * sy}\t1000.0\t...")
            t += 2
    lines.append(f"MSG\t{t} TRIAL_RESULT 0")
    path.write_text("\n".join(lines) + "\n")
    return path


def import_sessions(tmp_path: Path) -> tuple[Path, Path, int, int]:
    """The store of P1's and P2's imports (each its own screen), the image folder, the ids."""
    root = images(tmp_path)
    store = tmp_path / "s.sqlite"
    for who, rect, fix, mm in (("P1", RECT, P1_FIX, MM), ("P2", P2_RECT, P2_FIX, P2_MM)):
        asc = write_asc(tmp_path / f"{who}.asc", rect, fix)
        argv = ["import", "eyelink", str(asc), "--store", str(store), "--participant", who,
                "--images", f"folder:{root}", "--screen-mm", str(SCREEN[0] * mm[0]),
                str(SCREEN[1] * mm[1]), "--distance-cm", str(DIST / 10)]  # fmt: skip
        assert main(argv) == 0
    with SessionStore(store) as st:
        ids = {r.participant: r.id for r in st.sessions()}
    return store, root, ids["P1"], ids["P2"]


def hand_kernel_p2() -> tuple[float, float, float, float]:
    """P2's kernel in image px by hand: square 0.25 mm pixels, one screen px per image px."""
    span = 2 * DIST * math.tan(math.radians(2.5)) / P2_MM[0]
    c = 0.4 * span / (2 * math.sqrt(2 * math.log(2)))
    return (c, c, span / 2, span / 2)


def hand_heatmap(points: list[tuple[float, float]], kernel: tuple[float, float, float, float],
                 shape: tuple[int, int], scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:  # fmt: skip
    """tests/test_placement.py's hand formula over a whole frame: the sum of
    ``exp(-(dx²/2c_x² + dy²/2c_y²))``, zero outside ``(dx/r_x)² + (dy/r_y)² > 1``; points and
    kernel scaled by ``scale`` (x, y) into the frame."""
    cx, cy, rx, ry = kernel
    kx, ky = scale
    cx, rx, cy, ry = cx * kx, rx * kx, cy * ky, ry * ky
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    out = np.zeros(shape)
    for px, py in points:
        dx, dy = xx - px * kx, yy - py * ky
        g = np.exp(-(dx * dx / (2 * cx * cx) + dy * dy / (2 * cy * cy)))
        out += np.where((dx / rx) ** 2 + (dy / ry) ** 2 > 1.0, 0.0, g)
    return out


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab.models.architectures import build_model

    tf.keras.utils.set_random_seed(0)
    return build_model("small_cnn", (32, 32, 1), len(CLASSES))


# -- compare ---------------------------------------------------------------------------------
@pytest.mark.tf
def test_compare_builds_each_trials_own_ellipse_by_hand(tmp_path: Path, model: Any) -> None:
    from gazelab.analysis.compare import analyse_project
    from gazelab.analysis.report import write_report

    store, _, p1, p2 = import_sessions(tmp_path)
    with SessionStore(store) as st:
        comp = analyse_project(st, model, analysis=AnalysisSettings(analyzer="gradient"))
    (im,) = comp.images
    assert im.image_id == IMAGE and im.shape == SHAPE
    g1, g2 = im.humans["P1"], im.humans["P2"]
    assert g1.points == pytest.approx(np.array(P1_FIX), abs=1e-9)
    assert g2.points == pytest.approx(np.array(P2_FIX), abs=1e-9)
    # P1: the ellipse of the hand computation (c_x 47.47, c_y 33.90, r_x 139.7, r_y 99.8 px)
    k1 = hand_kernel_image_px()
    assert g1.kernel_xy == pytest.approx(k1, rel=1e-12)
    want1 = hand_heatmap(P1_FIX, k1, SHAPE)
    assert g1.heatmap is not None
    assert np.abs(g1.heatmap - want1).max() < 1e-9
    # at the centre fixation: its own peak; the other fixation's ellipse (150 px up, r_y 99.8)
    # does not reach it
    assert g1.heatmap[300, 200] == pytest.approx(1.0, abs=1e-12)
    # ... not the circle of the same area (what compare built before)
    c, r = g1.kernel_px  # type: ignore[misc]
    assert (c, r) == pytest.approx((math.sqrt(k1[0] * k1[1]), math.sqrt(k1[2] * k1[3])))
    circle = fixation_heatmap(np.array(P1_FIX), SHAPE, c, r)
    assert np.abs(circle - want1).max() > 0.1
    assert np.count_nonzero(circle > 0) != np.count_nonzero(want1 > 0)
    # P2, same image, another screen and rectangle: its own kernel, a circle
    k2 = hand_kernel_p2()
    assert g2.kernel_xy is None and g2.kernel_px == pytest.approx((k2[0], k2[2]), rel=1e-12)
    assert np.abs(g2.heatmap - hand_heatmap(P2_FIX, k2, SHAPE)).max() < 1e-9  # type: ignore[operator]
    # the model heatmap: the image's kernel (its last trial's, P2's here) on the model's points
    assert im.model_points is not None and im.model_heatmap is not None
    want_m = hand_heatmap([tuple(p) for p in im.model_points], k2, SHAPE)
    assert np.abs(im.model_heatmap - want_m).max() < 1e-9
    # the rows score these maps: P1 vs P2 on their own kernels
    row = next(r for r in comp.rows if r["annotator"] == "P1" and r["reference"] == "P2")
    from gazelab.analysis.compare import score_maps

    want_row = score_maps(want1, g2.heatmap, g1.points)  # type: ignore[arg-type]
    assert row["iou"] == pytest.approx(want_row["iou"], abs=1e-12)
    assert row["cc"] == pytest.approx(want_row["cc"], abs=1e-9)
    # the result records the first image's kernel: c/radius for old readers, and the ellipse
    write_report(comp, tmp_path / "report")
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    kern = doc["kernel_image_px"]
    assert set(kern) == {"c", "radius", "c_x", "c_y", "r_x", "r_y"}
    assert (kern["c_x"], kern["c_y"], kern["r_x"], kern["r_y"]) == pytest.approx(k2, rel=1e-12)
    assert comp.kernel_image_px["radius"] == pytest.approx(k2[2], rel=1e-12)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Heatmap kernel in image pixels: c = 35.60, radius = 104.79." in md


@pytest.mark.tf
def test_compare_of_p1_alone_records_the_ellipse(tmp_path: Path, model: Any) -> None:
    from gazelab.analysis.compare import analyse_project

    store, _, p1, _ = import_sessions(tmp_path)
    with SessionStore(store) as st:
        comp = analyse_project(st, model, [p1], analysis=AnalysisSettings(analyzer="gradient"))
    (im,) = comp.images
    k1 = hand_kernel_image_px()
    k = comp.kernel_image_px
    assert (k["c_x"], k["c_y"], k["r_x"], k["r_y"]) == pytest.approx(k1, rel=1e-12)
    assert im.kernel_xy == pytest.approx(k1, rel=1e-12)
    from gazelab.analysis.report import markdown, summaries

    assert ("an ellipse, c_x = 47.47, c_y = 33.90, r_x = 139.72, r_y = 99.80."
            in markdown(comp, summaries(comp)))  # fmt: skip
    assert im.model_points is not None and im.model_heatmap is not None
    want = hand_heatmap([tuple(p) for p in im.model_points], k1, SHAPE)
    assert np.abs(im.model_heatmap - want).max() < 1e-9
    # baselines build a model map they did not keep with the same ellipse
    from dataclasses import replace

    light = replace(im, model_heatmap=None)
    assert np.abs(light.model_heatmap_or_build() - want).max() < 1e-9  # type: ignore[operator]


# -- gazelab heatmaps ------------------------------------------------------------------------
def test_heatmaps_command_writes_the_ellipse_in_image_and_rectangle_frames(
    tmp_path: Path,
) -> None:
    store, _, p1, p2 = import_sessions(tmp_path)
    k1 = hand_kernel_image_px()
    for sid, fix, kern, rect in ((p1, P1_FIX, k1, RECT), (p2, P2_FIX, hand_kernel_p2(), P2_RECT)):
        out = tmp_path / f"hm{sid}"
        assert main(["heatmaps", "--store", str(store), "--session", str(sid), "--out",
                     str(out)]) == 0  # fmt: skip
        img = np.load(out / f"session{sid}_heatmaps_image.npz")
        assert img.files == [IMAGE]
        hm = img[IMAGE]
        assert hm.dtype == np.float64 and hm.shape == SHAPE
        assert np.abs(hm - hand_heatmap(fix, kern, SHAPE)).max() < 1e-9
        # the stimulus frame of an imported trial is the image's rectangle on screen (screen
        # px from its corner): the same sum with the screen kernel (image kernel × scale)
        stim = np.load(out / f"session{sid}_heatmaps.npz")[IMAGE]
        scale = (rect[2] / SHAPE[1], rect[3] / SHAPE[0])
        assert stim.shape == (round(rect[3]), round(rect[2]))
        assert np.abs(stim - hand_heatmap(fix, kern, stim.shape, scale)).max() < 1e-6
        assert len(list(out.glob("*.png"))) == 1  # the overlay
    # P1's map is the ellipse: on the centre fixation's row 200 ± 139 (r_x = 139.7), where
    # the circle of the same area (r = 118.1) would give 200 ± 118
    hm = np.load(tmp_path / f"hm{p1}" / f"session{p1}_heatmaps_image.npz")[IMAGE]
    cols = np.flatnonzero(hm[300] > 0)
    assert (cols[0], cols[-1], cols.size) == (61, 339, 279)


# -- human masks -----------------------------------------------------------------------------
def hand_contour(groups: list[tuple[list[tuple[float, float]], tuple[float, float, float, float]]],
                 size: int) -> np.ndarray:  # fmt: skip
    """The union of the ellipses ``((x - p_x s_x)/(r_x s_x))² + ((y - p_y s_y)/(r_y s_y))² ≤ 1``
    at ``size × size`` (``s`` = size / the image's width and height)."""
    scale = (size / SHAPE[1], size / SHAPE[0])
    out = np.zeros((size, size), dtype=bool)
    for fix, kern in groups:
        out |= hand_heatmap(fix, kern, (size, size), scale) > 0
    return out


@pytest.mark.tf
def test_exported_human_mask_is_the_ellipses_contour(tmp_path: Path, model: Any) -> None:
    from gazelab.analysis.compare import analyse_project
    from gazelab.models.export import export_masks, jobs_from_comparison, load_masks

    store, _, p1, p2 = import_sessions(tmp_path)
    with SessionStore(store) as st:
        comp = analyse_project(st, model, analysis=AnalysisSettings(analyzer="gradient"))
    k1, k2 = hand_kernel_image_px(), hand_kernel_p2()
    size = 64
    jobs = jobs_from_comparison(comp, "human", settings=Settings(), size=size, annotator="P1")
    export_masks(jobs, tmp_path / "m1", request={"algorithm": "human", "annotator": "P1"})
    ms = load_masks(tmp_path / "m1")
    want = hand_contour([(P1_FIX, k1)], size)
    assert np.array_equal(ms.mask(IMAGE), want)
    # 64 / 400 = 0.16 px per image px in x, 64 / 600 in y: r_x·0.16 = 22.4, r_y·0.107 = 10.6
    rows, cols = np.nonzero(want)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (0, 54, 6, 42)
    (row,) = ms.rows
    assert json.loads(row["parameters"])["kernels_image_px"] == [pytest.approx(list(k1), abs=1e-4)]
    # the command: gazelab masks --algorithm human --annotator P1 writes the same mask
    model.save(tmp_path / "m.keras")
    assert main(["masks", "--algorithm", "human", "--store", str(store), "--model",
                 str(tmp_path / "m.keras"), "--annotator", "P1", "--size", str(size),
                 "--out", str(tmp_path / "cli")]) == 0  # fmt: skip
    assert np.array_equal(load_masks(tmp_path / "cli").mask(IMAGE), want)
    # ... not the circle of the same area
    c, r = math.sqrt(k1[0] * k1[1]), math.sqrt(k1[2] * k1[3])
    assert not np.array_equal(want, hand_contour([(P1_FIX, (c, c, r, r))], size))
    # both annotators pooled: each fixation with its own trial's kernel
    pooled = jobs_from_comparison(comp, "human", settings=Settings(), size=size)
    (job,) = pooled
    # (P2's circle keeps the circle's own path: on a square mask of a portrait image it is
    # built in image px and resampled, as every circle was before)
    from gazelab.models.masks import human_mask_from_fixations

    p2_mask = human_mask_from_fixations(np.array(P2_FIX), SHAPE, (size, size), k2[0], k2[2])
    both = job.compute()
    assert np.array_equal(both, want | p2_mask)
    assert both.sum() > want.sum() and both.sum() > p2_mask.sum()
    assert len(job.parameters["kernels_image_px"]) == 2


# -- AOIs ------------------------------------------------------------------------------------
@pytest.mark.tf
def test_aois_are_in_the_placements_image_frame(tmp_path: Path, model: Any) -> None:
    from gazelab.analysis.compare import analyse_project

    store, _, p1, p2 = import_sessions(tmp_path)
    with SessionStore(store) as st:
        comp = analyse_project(st, model, analysis=AnalysisSettings(analyzer="gradient"))
        s = Settings.from_toml(st.session(p1).settings_toml)
    aois = {IMAGE: [AOI.ellipse("centre", (200, 300), (15, 15)),
                    AOI.polygon("upper left", [(85, 135), (115, 135), (115, 165), (85, 165)]),
                    AOI.ellipse("lower right", (300, 450), (15, 15))]}  # fmt: skip
    rows = {(r["aoi"], r["annotator"]): r for r in comparison_aoi_rows(comp, aois)}
    dur = {a: comp.images[0].humans[a].duration_ms for a in ("P1", "P2")}
    # P1 looked at the centre, then the upper left quarter point; P2 at the lower right,
    # then the centre: the same image points, at different places on different screens
    assert [rows["centre", "P1"]["fixations"], rows["upper left", "P1"]["fixations"],
            rows["lower right", "P1"]["fixations"]] == [1, 1, 0]  # fmt: skip
    assert [rows["centre", "P2"]["fixations"], rows["upper left", "P2"]["fixations"],
            rows["lower right", "P2"]["fixations"]] == [1, 0, 1]  # fmt: skip
    assert rows["centre", "P1"]["dwell_ms"] == pytest.approx(dur["P1"][0])  # type: ignore[index]
    assert rows["centre", "P1"]["ttff_ms"] == pytest.approx(0.0, abs=1e-9)
    on2 = comp.images[0].humans["P2"].onset_ms
    assert on2 is not None and 400.0 <= on2[1] <= 420.0  # the second 400 ms at 500 Hz
    assert rows["centre", "P2"]["ttff_ms"] == on2[1]
    # in the settings' centred square the same gaze would lie elsewhere: P1's first
    # fixation (screen 850, 375) is not at the image's centre there
    layout = StimulusLayout(SCREEN, s.stimulus.square_px, SHAPE)
    off = layout.screen_to_image([[850.0, 375.0]])[0]
    assert not aois[IMAGE][0].contains(off[None])[0]


# -- annotate's centred square: as before, bit for bit -------------------------------------
@pytest.mark.tf
def test_annotate_session_is_the_centred_square_bit_for_bit(tmp_path: Path, model: Any) -> None:
    """A session as ``annotate`` records it (a ``stimulus_placement`` event of its centred
    square): every map, row and mask is what the centred-square formulas give — the
    display's kernel divided by the layout's scale, a circle, on the layout's points."""
    from gazelab.analysis.compare import analyse_project, score_maps
    from gazelab.analysis.saliency import model_heatmap
    from gazelab.models.export import jobs_from_comparison
    from gazelab.models.masks import human_mask_from_fixations
    from gazelab.tests.gaze_project import write_gaze_session

    root = images(tmp_path)
    source = f"folder:{root}"
    s = Settings()
    fix = {"A": [(200.0, 300.0), (120.0, 80.0), (330.0, 500.0)], "B": [(50.0, 60.0),
                                                                       (210.0, 310.0)]}  # fmt: skip
    store = SessionStore(tmp_path / "p.sqlite", create=True)
    sids = {}
    for who, pts in fix.items():
        sid = write_gaze_session(store, who, source, {IMAGE: pts}, {IMAGE: "happy"})
        p = StimulusPlacement.centred_square(s.display, s.stimulus.square_px, SHAPE)
        store.add_event(sid, PLACEMENT_EVENT, 0.0, trial_index=0, payload=p.to_payload(IMAGE))
        sids[who] = sid
    comp = analyse_project(store, model, analysis=AnalysisSettings(analyzer="gradient"),
                           baseline_draws=0)  # fmt: skip
    (im,) = comp.images
    layout = StimulusLayout(s.display.resolution_px, s.stimulus.square_px, SHAPE)
    k = HeatmapKernel.from_geometry(s.display, s.heatmap.span_deg, s.heatmap.fwhm_fraction)
    c, r = k.c / layout.scale, k.radius / layout.scale
    assert layout.scale == 2.0
    assert im.kernel_px == (c, r) and im.kernel_xy is None
    maps = {}
    for who, g in im.humans.items():
        assert g.kernel_px == (c, r) and g.kernel_xy is None
        assert g.points == pytest.approx(np.array(fix[who]), abs=0.05)
        maps[who] = fixation_heatmap(g.points, SHAPE, c, r)
        assert np.array_equal(g.heatmap, maps[who])  # type: ignore[arg-type]
    assert im.relevance is not None
    want_model = model_heatmap(im.relevance, comp.n_points, SHAPE, c, r)
    assert np.array_equal(im.model_heatmap, want_model)  # type: ignore[arg-type]
    from gazelab.analysis.compare import blas_threads

    for row in comp.rows:
        g = im.humans[row["annotator"]]
        ref = want_model if row["reference"] == "model" else maps[row["reference"]]
        with blas_threads(1):  # as compare scores (a dot product's sum order)
            want = score_maps(maps[row["annotator"]], ref, g.points)
        for m, v in want.items():
            assert row[m] == v or (math.isnan(row[m]) and math.isnan(v)), (row, m)
    assert set(comp.kernel_image_px) >= {"c", "radius"}
    assert (comp.kernel_image_px["c"], comp.kernel_image_px["radius"]) == (c, r)
    # the human mask: the old call (a square mask of a portrait image: built in image px
    # and resampled), and no kernel parameters added to the manifest
    (job,) = jobs_from_comparison(comp, "human", settings=s, size=32)
    pooled = np.concatenate([im.humans[a].points for a in ("A", "B")])
    assert np.array_equal(job.compute(), human_mask_from_fixations(pooled, SHAPE, (32, 32), c, r))
    assert set(job.parameters) == {"point_source", "points"}
    store.close()
    # gazelab heatmaps: the stimulus-frame map of the centred square, as before
    out = tmp_path / "hm"
    assert main(["heatmaps", "--store", str(tmp_path / "p.sqlite"), "--session",
                 str(sids["A"]), "--out", str(out)]) == 0  # fmt: skip
    stim = np.load(out / f"session{sids['A']}_heatmaps.npz")[IMAGE]
    screen = layout.image_to_screen(im.humans["A"].fixations)
    want_stim = fixation_heatmap(layout.screen_to_stimulus(screen), (1200, 1200), k.c, k.radius)
    assert stim.shape == (1200, 1200)
    assert np.abs(stim - want_stim.astype(np.float32)).max() <= 1e-6
    img = np.load(out / f"session{sids['A']}_heatmaps_image.npz")[IMAGE]
    assert np.array_equal(img, maps["A"])


# -- the viewer's gaze cache ---------------------------------------------------------------
def test_a_trials_ellipse_survives_the_gaze_cache(tmp_path: Path) -> None:
    """``AnnotatorGaze.arrays`` (the viewer's on-disk entry) keeps ``kernel_xy``; an entry
    written before it (no ``kernel_xy``) reads back as the circle it was built with."""
    from gazelab.analysis.human import trial_gaze
    from gazelab.analysis.scoring import AnnotatorGaze, annotator_gaze

    store, _, p1, _ = import_sessions(tmp_path)
    with SessionStore(store) as st:
        (tg,) = trial_gaze(st, p1, {IMAGE: SHAPE})
    g = annotator_gaze(tg, "P1", p1, None, keep_map=False)
    assert g.kernel_xy == pytest.approx(hand_kernel_image_px(), rel=1e-12)
    path = tmp_path / "entry.npz"
    np.savez(path, **g.arrays())
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    back = AnnotatorGaze.from_arrays("P1", p1, None, arrays)
    assert back.kernel_xy == g.kernel_xy and back.kernel_px == g.kernel_px
    assert np.array_equal(back.heatmap_or_build(), g.heatmap_or_build())
    assert np.abs(back.heatmap_or_build() - hand_heatmap(P1_FIX, g.kernel_xy, SHAPE)).max() < 1e-9
    old = {k: v for k, v in arrays.items() if k != "kernel_xy"}
    circle = AnnotatorGaze.from_arrays("P1", p1, None, old)
    assert circle.kernel_xy is None
    c, r = g.kernel_px  # type: ignore[misc]
    assert np.array_equal(circle.heatmap_or_build(), fixation_heatmap(g.points, SHAPE, c, r))

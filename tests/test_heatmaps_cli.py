"""``gazelab heatmaps`` rebuilds a session's images from the spec stored with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.store import SessionStore
from gazelab.app.cli import main
from gazelab.models.datasets import open_image_set
from gazelab.models.synthetic import synthetic_faces, write_folder
from tests.gaze_project import write_gaze_session

SPEC = "synthetic:3:7:48"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.sqlite"
    ids = open_image_set(SPEC).ids
    with SessionStore(path, create=True) as st:  # a session of images 0 and 1: 1 and 2 fixations
        write_gaze_session(st, "P01", SPEC, {ids[0]: [(10.0, 12.0)],
                                             ids[1]: [(8.0, 8.0), (40.0, 40.0)]}, {})  # fmt: skip
    return path


def _run(*argv: str) -> int:
    return main(["heatmaps", *argv])


def test_heatmaps_use_the_stored_image_spec(store: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert _run("--store", str(store), "--session", "1", "--out", str(tmp_path / "o")) == 0
    out = capsys.readouterr().out
    ids = open_image_set(SPEC).ids
    assert f"{ids[0]}: 1 fixations" in out and f"{ids[1]}: 2 fixations" in out
    heat = np.load(tmp_path / "o" / "session1_heatmaps.npz")
    assert sorted(heat.files) == ids[:2]
    # an explicit spec, even in another spelling of the same images, gives the same maps
    assert _run("--store", str(store), "--session", "1", "--images", SPEC,
                "--out", str(tmp_path / "e")) == 0  # fmt: skip
    again = np.load(tmp_path / "e" / "session1_heatmaps.npz")
    assert all(np.array_equal(heat[k], again[k]) for k in heat.files)
    # the faces written as files (``<class>/<id>.png``) are matched by file name
    write_folder(synthetic_faces(3, size=48, seed=7), tmp_path / "faces")
    assert _run("--store", str(store), "--session", "1", "--images", str(tmp_path / "faces"),
                "--out", str(tmp_path / "f")) == 0  # fmt: skip
    files = np.load(tmp_path / "f" / "session1_heatmaps.npz")
    assert all(np.array_equal(heat[k], files[k]) for k in heat.files)


def test_other_images_are_named_in_one_line(store: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = _run("--store", str(store), "--session", "1", "--images", "synthetic:3:8:48",
                "--out", str(tmp_path / "o"))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "session 1: 2 image id(s) of the session are not in synthetic:3:8:48" in err


def test_a_stored_spec_that_cannot_be_rebuilt_asks_for_images(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.sqlite"
    with SessionStore(path, create=True) as st:
        st.create_session("P01", settings_toml="", seed=0, image_source=f"folder:{tmp_path}/gone",
                          stimulus_order=["a"], start_local_s=0.0)  # fmt: skip
    assert _run("--store", str(path), "--session", "1", "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "its images cannot be rebuilt" in err and "--images" in err and "gone" in err


def test_heatmap_pngs_are_overlays_on_the_image_with_a_legend(store: Path, tmp_path: Path) -> None:
    """The PNG is the image with the heatmap over it (not a bare grey map): the
    fixated pixel takes the annotator colour, a far pixel keeps the face, a legend row
    below names the participant."""
    from PIL import Image

    from gazelab.analysis.report import HUMAN_COLOURS
    from gazelab.fileio import safe_filename

    assert _run("--store", str(store), "--session", "1", "--out", str(tmp_path / "o")) == 0
    images = open_image_set(SPEC)
    iid = images.ids[0]
    png = np.asarray(
        Image.open(tmp_path / "o" / f"session1_{safe_filename(iid)}.png").convert("RGB")
    )
    face = images.image(iid)
    assert png.ndim == 3 and png.shape[1] >= face.shape[1] and png.shape[0] > face.shape[0]
    at_fixation = png[12, 10].astype(int)  # (x 10, y 12): the one fixation, peak opacity 0.6
    grey = int(face[12, 10])
    expect = 0.4 * grey + 0.6 * np.array(HUMAN_COLOURS[0])
    assert np.abs(at_fixation - expect).max() <= 2
    far = png[face.shape[0] - 2, face.shape[1] - 2].astype(int)  # outside the 5° kernel
    assert (far == int(face[-2, -2])).all()
    legend = png[face.shape[0] :]
    assert (np.abs(legend.reshape(-1, 3) - np.array(HUMAN_COLOURS[0])).sum(axis=1) == 0).any()


def test_heatmaps_take_any_registered_fixation_detector(
    store: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """``--fixations METHOD`` swaps the session's detector for any registered one (a
    plug-in's too: the choices are the registry's); an unknown one is refused by argparse."""
    from gazelab.gaze.fixations import DETECTORS

    assert _run("--store", str(store), "--session", "1", "--fixations", "idt",
                "--out", str(tmp_path / "i")) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "fixations: idt (the session recorded " in out
    assert (
        sorted(np.load(tmp_path / "i" / "session1_heatmaps.npz").files)
        == open_image_set(SPEC).ids[:2]
    )
    with pytest.raises(SystemExit) as exit_:
        _run("--store", str(store), "--session", "1", "--fixations", "nosuch",
             "--out", str(tmp_path / "n"))  # fmt: skip
    assert exit_.value.code == 2
    assert "nosuch" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["heatmaps", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert all(name in helptext for name in DETECTORS.names())

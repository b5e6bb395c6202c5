"""One parser of image specs and one ImageSet: every registered layout is
accepted everywhere an image spec is, and the record is read by position or by id."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from gazelab.annotation.session import SessionConfig
from gazelab.app.cli import main
from gazelab.models.datasets import ImageSet, open_image_set
from gazelab.models.datasets.base import DatasetError
from gazelab.models.datasets.library import load_dataset
from gazelab.models.datasets.registry import layout_names, layouts, parse_image_spec
from gazelab.models.synthetic import synthetic_faces

PATH_LAYOUTS = [name for name in layout_names() if parse_image_spec(f"{name}:x")[0].needs_argument]


def test_the_registry_holds_every_layout_and_alias() -> None:
    names = list(layouts())
    assert names[0] == "synthetic"  # the layouts without an argument first, then by name
    assert {"synthetic", "affectnet", "ck+", "fer+", "folder"} <= set(names)  # at least these
    assert names[1:] == sorted(names[1:])
    assert {*layouts(), "ckplus", "ferplus"} <= set(layout_names())
    assert parse_image_spec("CKPLUS:/d")[0].name == "ck+"
    assert parse_image_spec("ferplus:/d") == (layouts()["fer+"], "/d")


def test_one_name_for_the_parser_and_the_record() -> None:
    import gazelab.annotation.session as session
    import gazelab.models.datasets.library as library

    assert not {"ImageSource", "open_image_source"} & set(vars(session))
    assert "load_image_set" not in vars(library)


def test_synthetic_set_by_position_and_by_id() -> None:
    faces = synthetic_faces(5, size=32, seed=3)
    s = open_image_set("synthetic:5:3:32")
    assert s.spec == "synthetic:5:3:32" and s.ids == faces.ids and len(s) == 5
    iid = s.ids[3]
    assert np.array_equal(s.image(iid), faces.images[3]) and np.array_equal(
        s.image(3), s.image(iid)
    )
    assert s.labels[iid] == s.labels[3] == s.label(iid) == int(faces.labels[3])
    assert s.labels.get("nope") is None and iid in s and iid in s.labels and "nope" not in s
    assert np.array_equal(np.asarray(s.labels), faces.labels)
    assert np.array_equal(s.regions[iid], faces.regions[3]) and s.region(3) is s.regions[iid]
    sub = s.subset([3, 1])
    assert sub.ids == [iid, s.ids[1]] and sub.labels[iid] == s.labels[iid]
    assert list(sub.regions) == sub.ids and sub.index(s.ids[1]) == 1
    with pytest.raises(DatasetError, match="'nope' is not in synthetic:5:3:32"):
        s.image("nope")


def test_a_folder_has_no_regions_and_keeps_its_split(tmp_path: Path) -> None:
    from gazelab.models.synthetic import write_folder

    write_folder(synthetic_faces(4, size=32), tmp_path / "train")
    s = open_image_set(f"folder:{tmp_path}")
    assert s.regions == {} and s.region(0) is None and set(s.split) == {"train"}
    assert s.labels[s.ids[0]] == s.label(0)


def test_a_bad_synthetic_spec_is_a_user_error(tmp_path: Path) -> None:
    from gazelab.errors import GazelabError
    from gazelab.models.synthetic import SyntheticSpecError, parse_synthetic_spec

    with pytest.raises(SyntheticSpecError, match="renderer must be one of") as err:
        parse_synthetic_spec("synthetic:4:0:renderer=z")
    assert isinstance(err.value, GazelabError) and isinstance(err.value, ValueError)
    again = pickle.loads(pickle.dumps(err.value))  # as sent to a worker process
    assert str(again) == str(err.value) and again.problem == err.value.problem
    with pytest.raises(DatasetError, match="SIZE = 8 must be in 16..4,096") as err:
        open_image_set("synthetic:4:0:8")
    assert str(err.value).count("image source") == 1  # named once, not twice
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="notes.txt is a file, not a folder of images"):
        open_image_set(f"folder:{tmp_path / 'notes.txt'}")
    for spec, part in (("synthetic:0:0", "N = 0 must be in 1..1,000,000"),
                       ("synthetic:99999999999:0", "N = 99999999999 must be in"),
                       ("synthetic:8:0:999999", "SIZE = 999999 must be in 16..4,096"),
                       ("synthetic:8:0:64:subjects=0", "subjects = 0 must be")):  # fmt: skip
        with pytest.raises(DatasetError, match=part):
            open_image_set(spec)  # at once: nothing is allocated or drawn


def test_layout_options_go_to_the_layout_that_has_them(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"the synthetic layout has no option\(s\) \['x'\]"):
        open_image_set("synthetic:2:0:16", x=1)
    assert layouts()["ck+"].options() == ["last_frames"]


@pytest.mark.parametrize("name", PATH_LAYOUTS)
def test_every_path_layout_is_accepted_by_annotate_problems(name: str, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    assert SessionConfig(store, "P01", images=f"{name}:{tmp_path}").problems() == []
    missing = SessionConfig(store, "P01", images=f"{name}:{tmp_path / 'gone'}").problems()
    assert len(missing) == 1 and "gone does not exist" in missing[0]


def test_annotate_accepts_fer_plus(tmp_path: Path) -> None:
    """Was refused by problems() while open_image_set accepted it."""
    store = tmp_path / "s.sqlite"
    assert SessionConfig(store, "P01", images=f"fer+:{tmp_path}").problems() == []
    assert SessionConfig(store, "P01", images="synthetic:4:0:subjects=2").problems() == []
    bad = SessionConfig(store, "P01", images="imagenet:/x").problems()
    assert len(bad) == 1 and all(n in bad[0] for n in layouts())
    bad = SessionConfig(store, "P01", images="synthetic:4:x").problems()
    assert len(bad) == 1 and "synthetic:N:SEED" in bad[0]


def test_load_dataset_is_the_registry(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset layout 'imagenet'; choose one of "
                       "synthetic, affectnet, ck\\+, fer\\+, folder"):  # fmt: skip
        load_dataset("imagenet", tmp_path)
    assert load_dataset("synthetic", "3:0:16").ids == open_image_set("synthetic:3:0:16").ids


# Every command that takes an image spec, as argv built around the spec.
def _commands(t: Path) -> dict[str, list[str]]:
    cfg = t / "run.toml"
    return {
        "annotate": ["annotate", "--store", str(t / "s.sqlite"), "--participant", "P01",
                     "--no-dialog", "--images", "{spec}"],
        "heatmaps": ["heatmaps", "--store", str(t / "s.sqlite"), "--session", "1",
                     "--images", "{spec}", "--out", str(t / "o")],
        "saliency": ["saliency", "--model", str(t / "m.keras"), "--images", "{spec}",
                     "--out", str(t / "o")],
        "saliency --dataset": ["saliency", "--model", str(t / "m.keras"), "--dataset", "{spec}",
                               "--out", str(t / "o")],
        "masks": ["masks", "--algorithm", "mean", "--model", str(t / "m.keras"),
                  "--images", "{spec}", "--out", str(t / "o")],
        "prune": ["prune", "--model", str(t / "m.keras"), "--images", "{spec}"],
        "train": ["train", "trainer", "--config", str(cfg), "--out", str(t / "o")],
    }  # fmt: skip


def _run(argv: list[str], spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    (tmp_path / "run.toml").write_text(f'[data]\nimages = "{spec}"\n')
    code = main([a.replace("{spec}", spec) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", list(_commands(Path("."))))
def test_every_command_takes_every_layout(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown layout is refused with the registered ones listed; every registered name
    (aliases too) reaches its own loader, which names the missing folder."""
    monkeypatch.chdir(tmp_path)
    argv = _commands(tmp_path)[command]
    line = _run(argv, "imagenet:/data", tmp_path, capsys)
    assert "unknown image source 'imagenet:/data'" in line
    assert all(layout.usage in line for layout in layouts().values()), line
    for name in PATH_LAYOUTS:
        line = _run(argv, f"{name}:{tmp_path / 'gone'}", tmp_path, capsys)
        assert "gone does not exist" in line and "unknown" not in line, line
    line = _run(argv, "synthetic:4:0:8", tmp_path, capsys)  # SIZE < 16: the layout's message
    assert "SIZE = 8 must be in 16..4,096" in line and line.count("image source") == 1, line


def test_a_new_layout_is_one_registration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a new module's ``@register_layout`` does: the spec works in the parser, the set-up
    check and the CLI help, with nothing else edited."""
    from gazelab.models.datasets import registry

    def load_toy(argument: str, *, max_pixels: int | None = None) -> ImageSet:
        n = int(argument)
        return ImageSet("toy", [f"t{i}" for i in range(n)], np.arange(n) % 8,
                        np.array(["all"] * n, dtype=object),
                        lambda i: np.full((4, 4), i, np.uint8))  # fmt: skip

    monkeypatch.setattr(registry.LAYOUTS, "_entries", dict(registry.LAYOUTS._entries))
    registry.register_layout("toy", usage="toy:N", problem=lambda a: None)(load_toy)
    s = open_image_set("toy:3")
    assert s.spec == "toy:3" and s.labels["t2"] == 2 and s.image("t1")[0, 0] == 1
    assert SessionConfig(tmp_path / "s.sqlite", "P01", images="toy:3").problems() == []
    for command in ("annotate", "saliency", "heatmaps"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "toy:N" in capsys.readouterr().out


def test_a_synthetic_set_renders_each_face_when_asked_identical_to_the_whole_set() -> None:
    """A 1 000-face set opens without drawing (the viewer's < 3 s open); each face
    and its regions, drawn alone, equal their rendering in synthetic_faces."""
    import time

    from gazelab.models.synthetic import synthetic_faces

    t = time.perf_counter()
    big = open_image_set("synthetic:1000:0:96")
    assert len(big) == 1000 and time.perf_counter() - t < 1.0  # nothing drawn yet (generous)
    whole = synthetic_faces(10, size=48, seed=4, subjects=3)
    lazy = open_image_set("synthetic:10:4:48:subjects=3")
    for i in (7, 0, 7, 3):  # out of order, and again (from the cache)
        assert np.array_equal(lazy.image(i), whole.images[i])
        assert np.array_equal(lazy.regions[whole.ids[i]], whole.regions[i])
    assert list(lazy.labels) == list(whole.labels) and list(lazy.subjects) == whole.subjects


def test_registries_are_complete_for_threads_that_ask_at_once() -> None:
    """Found by a benchmark: threads asking the layout registry while another thread was
    still importing the layouts saw no 'synthetic' layout. Run in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from gazelab.models.datasets.registry import open_image_set\n"
        "from gazelab.gaze.trackers.registry import trackers\n"
        "errs = []\n"
        "def f():\n"
        "    try:\n"
        "        open_image_set('synthetic:2:0:32')\n"
        "        assert {'lsl', 'sim', 'gazepoint'} <= set(trackers())\n"
        "    except Exception as e:\n"
        "        errs.append(repr(e))\n"
        "ts = [threading.Thread(target=f) for _ in range(12)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(errs)\n"
    )
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
        assert out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]

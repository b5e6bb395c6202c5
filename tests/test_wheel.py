"""The package as pip builds it: every sub-package found without a list to keep up to date.

The wheel installed into a new virtual environment and running ``gazelab demo --quick`` is
``scripts/wheel_check.sh`` (``make test`` runs it in CI); see docs/install.md.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setup_module():
    spec = importlib.util.spec_from_file_location("gazelab_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the setup() call is under `if __name__ == "__main__"`
    return module


def _package_folders() -> dict[str, Path]:
    """Every folder holding an ``__init__.py`` below the mapped root folders, by dotted name."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    found = {}
    for name, folder in package_dir.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found[".".join((name, *parts))] = init.parent
    return found


def test_every_root_folder_is_mapped_to_its_gazelab_name():
    with (ROOT / "pyproject.toml").open("rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    for folder in ("app", "annotation", "gaze", "analysis", "models"):
        assert package_dir[f"gazelab.{folder}"] == folder
    assert (
        "packages" not in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    ), "setup.py finds the packages; a hand-kept list would go stale"


def test_discovery_finds_every_sub_package_without_a_list():
    discovered = set(_setup_module().discover_packages(ROOT))
    expected = set(_package_folders())
    assert discovered == expected
    # the nested ones a list used to miss
    assert {"gazelab.gaze.trackers", "gazelab.gaze.detectors", "gazelab.app.commands"} <= discovered


def test_discovery_skips_folders_that_are_not_packages(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "gazelab" = "pkg", "gazelab.gaze" = "gaze" }\n'
    )
    for d in ("pkg", "gaze", "gaze/trackers", "gaze/data/deep"):
        (tmp_path / d).mkdir(parents=True)
    for d in ("pkg", "gaze", "gaze/trackers", "gaze/data/deep"):
        if d != "gaze/data":
            (tmp_path / d / "__init__.py").write_text("")
    found = _setup_module().discover_packages(tmp_path)
    # gaze/data has no __init__.py: neither it nor what lies below it is a package
    assert found == ["gazelab", "gazelab.gaze", "gazelab.gaze.trackers"]


def test_the_built_wheel_holds_every_package_and_the_licence(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        pytest.skip("pip is not installed in this environment")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("gazelab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in _package_folders():
        assert package.replace(".", "/") + "/__init__.py" in names, package
    # only the gazelab package at the top level (no stray `app`, `setup` ...)
    tops = {n.split("/")[0] for n in names}
    assert tops == {"gazelab", wheel.name.split("-py3")[0] + ".dist-info"}
    assert any(n.endswith(".dist-info/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    for extra in ("gui", "ml", "voice", "whisper", "lsl"):
        assert f"Provides-Extra: {extra}" in text
    assert (
        "gazelab.app.cli:main"
        in zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )

"""ProjectPaths: the files of a project folder, or each named on its own (a command-line
concern: it lives in gazelab/project.py, not in analysis/compare.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gazelab.project import ProjectError, ProjectPaths


def test_a_project_folder_names_its_files(tmp_path: Path) -> None:
    (tmp_path / "project.sqlite").write_bytes(b"")
    p = ProjectPaths.resolve(tmp_path)
    assert p == ProjectPaths(tmp_path / "project.sqlite", None, tmp_path / "saliency-cache")
    (tmp_path / "model.keras").write_bytes(b"")
    assert ProjectPaths.resolve(tmp_path).model == tmp_path / "model.keras"
    other = tmp_path / "c"
    assert ProjectPaths.resolve(tmp_path, cache=other).cache == other


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="give --project DIR or --store FILE"):
        ProjectPaths.resolve()
    with pytest.raises(FileNotFoundError, match="project store not found"):
        ProjectPaths.resolve(tmp_path)
    (tmp_path / "s.sqlite").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="model file not found: .*m.keras"):
        ProjectPaths.resolve(store=tmp_path / "s.sqlite", model=tmp_path / "m.keras")


def test_project_paths_has_one_home() -> None:
    import gazelab.analysis.compare as compare

    assert "ProjectPaths" not in vars(compare)

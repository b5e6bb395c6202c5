"""Shared fixtures: an output folder per test (screenshots, exports) and the reference geometry."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def out_dir(request: pytest.FixtureRequest) -> Path:
    """A kept folder for the test's artefacts: test-output/<test name>/."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    path = ROOT / "test-output" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def reference_geometry():
    from gazelab.gaze.geometry import DisplayGeometry

    return DisplayGeometry.from_diagonal(27.0, (2560, 1440), 700.0)

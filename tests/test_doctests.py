"""The examples in the docstrings run: every module of the core packages that has one
(``>>>``) is checked with :mod:`doctest`, in the quick tier and in CI."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path

import pytest

PACKAGES = ("gazelab", "gazelab.gaze", "gazelab.annotation", "gazelab.analysis", "gazelab.models")


def modules_with_examples() -> list[str]:
    """Dotted names of the modules below :data:`PACKAGES` whose source has ``>>>``."""
    found: set[str] = set()
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts or ">>> " not in path.read_text(encoding="utf-8"):
                continue
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            if importlib.util.find_spec(name) is not None:  # a folder of the tree, not a package
                found.add(name)
    return sorted(found)


MODULES = modules_with_examples()


def test_the_core_packages_have_examples() -> None:
    assert len(MODULES) >= 5 and "gazelab.gaze.geometry" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failed, attempted = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    assert attempted > 0, f"{name}: no example ran"
    assert failed == 0, f"{name}: {failed} of {attempted} examples failed (printed above)"

"""Package discovery for setuptools; everything else is in pyproject.toml.

The repository's root folders (``app/``, ``gaze/``, ...) are the sub-packages of one import
package, ``gazelab``: ``[tool.setuptools] package-dir`` in pyproject.toml maps each root
folder to its package name. pyproject.toml cannot find the packages *below* such a mapped
folder by itself, so this file walks each mapped folder and lists every folder holding an
``__init__.py`` as ``gazelab.<folder>.<sub>``: a new sub-package needs no edit anywhere
(tests/test_wheel.py checks that the built wheel holds every one).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def discover_packages(root: Path = ROOT) -> list[str]:
    """Every package below the folders of ``[tool.setuptools] package-dir``, dotted.

    Parameters
    ----------
    root
        The repository root (the folder of pyproject.toml).

    Returns
    -------
    list of str
        Sorted package names such as ``gazelab.gaze.trackers``; a folder without an
        ``__init__.py`` (data, caches) and everything below it is left out.
    """
    with (root / "pyproject.toml").open("rb") as f:
        package_dir: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    found: set[str] = set()
    for name, folder in package_dir.items():
        base = root / folder
        if not (base / "__init__.py").is_file():
            continue
        found.add(name)
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            parts = rel.parts
            if not parts:
                continue
            # every folder on the way must be a package too (no namespace packages)
            if all(
                (base.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))
            ):
                found.add(".".join((name, *parts)))
    return sorted(found)


if __name__ == "__main__":
    setup(packages=discover_packages())

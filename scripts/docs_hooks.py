"""MkDocs hook: give the API reference a source tree laid out like the installed package.

The repository's root folders are the sub-packages of ``gazelab`` (``gaze/`` is
``gazelab.gaze``; pyproject.toml's ``package-dir``), which mkdocstrings cannot see when it
reads the source. Before each build this hook copies the ``.py`` files of every mapped
folder into ``build/api-src/gazelab/`` as the package lays them out (griffe does not
follow links to folders), and the site reads that tree (``paths`` in mkdocs.yml): the
source is read, never imported.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority


# First of all on_config handlers: mkdocstrings reads its ``paths`` in its own on_config and
# leaves out a folder that does not exist yet, as on a fresh clone (no build/ yet).
@event_priority(100)
def on_config(config: Any) -> Any:
    root = Path(config.config_file_path).resolve().parent
    with (root / "pyproject.toml").open("rb") as f:
        package_dir: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    tree = root / "build" / "api-src"
    shutil.rmtree(tree, ignore_errors=True)
    for name, folder in package_dir.items():
        if name == "gazelab.tests":
            continue
        target = tree.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in (root / folder).rglob("*.py"):
            rel = source.relative_to(root / folder)
            # the top-level package's folder holds only its own modules, not the others'
            if name == "gazelab" and len(rel.parts) > 1:
                continue
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / rel)
    return config

"""Dataset layouts registered by name: ``load_dataset("ck+", path)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gazelab.models.datasets.affectnet import load_affectnet
from gazelab.models.datasets.base import DatasetError, ImageSet
from gazelab.models.datasets.ckplus import load_ckplus
from gazelab.models.datasets.ferplus import load_ferplus
from gazelab.models.datasets.folder import load_folder

LOADERS: dict[str, Callable[[Path], ImageSet]] = {
    "ck+": load_ckplus,
    "fer+": load_ferplus,
    "affectnet": load_affectnet,
    "folder": load_folder,
}


def load_dataset(name: str, path: str | Path) -> ImageSet:
    """Load a dataset in a registered layout: ``ck+``, ``fer+``, ``affectnet`` or ``folder``."""
    key = name.lower().replace("ckplus", "ck+").replace("ferplus", "fer+")
    if key not in LOADERS:
        raise DatasetError(f"unknown dataset layout {name!r}; choose one of {sorted(LOADERS)}")
    return LOADERS[key](Path(path))

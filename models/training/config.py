"""``gazelab train`` run configuration files and the masked training images they name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.models.training.data import TrainData
from gazelab.models.training.errors import TrainingError


@dataclass
class RunConfig:
    """A ``gazelab train`` config: the settings sections plus ``[data]``, ``[trainee]``.

    .. code-block:: toml

        [data]
        images = "synthetic:4000:0:64"   # or folder:PATH, ck+:PATH, fer+:PATH, affectnet:PATH
        val_fraction = 0.2               # when the dataset has no split of its own
        [training]
        architecture = "mobilenet_v2"
        input_size = 96
        epochs = 20
        masked_epochs = 9
        [trainee.masks]                  # mask name -> export folder (gazelab masks)
        negative = "masks/negative"
        mean = "masks/mean"
        perceptive = "masks/perceptive"
        human = "masks/human"            # optional: the human-mask runs
    """

    settings: Any
    images: str
    val_fraction: float
    masks: dict[str, Path]
    out: Path
    source: str
    text: str


def load_run_config(path: str | Path, out: str | Path | None = None) -> RunConfig:
    from gazelab.settings import Settings, SettingsError, read_toml_file

    p = Path(path)
    text, data = read_toml_file(p, "run config")
    d = dict(data.pop("data", {}))
    trainee = dict(data.pop("trainee", {}))
    images = d.pop("images", None)
    if not isinstance(images, str):
        raise SettingsError(
            f'{p}: [data] images = "synthetic:N:SEED" | "folder:PATH" | ... is required'
        )
    val_fraction = float(d.pop("val_fraction", 0.2))
    if d:
        raise SettingsError(f"{p}: unknown key(s) in [data]: {sorted(d)}; use images, val_fraction")
    masks = {
        str(k): (p.parent / str(v)).resolve() for k, v in dict(trainee.pop("masks", {})).items()
    }
    if trainee:
        raise SettingsError(f"{p}: unknown key(s) in [trainee]: {sorted(trainee)}; use masks")
    settings = Settings.from_dict(data, source=str(p))
    return RunConfig(settings, images, val_fraction, masks,
                     Path(out) if out else p.parent / "runs" / p.stem, str(p), text)  # fmt: skip


def masked_training_images(cfg: RunConfig, data: TrainData) -> dict[str, NDArray[np.float32]]:
    """The training images ⊙ each configured mask export (every training id must have one)."""
    from gazelab.models.export import load_masks, masked_images

    out = {}
    for name, folder in cfg.masks.items():
        ms = load_masks(folder)
        have = set(ms.ids)
        missing = [i for i in data.ids_train if i not in have]
        if missing:
            raise TrainingError(
                f"mask export {folder} has no mask for {len(missing)} of the {len(data.ids_train)} "
                f"training images (e.g. {missing[0]!r}); export masks for {cfg.images}"
            )
        out[name] = masked_images(data.x_train, data.ids_train, ms)
    return out

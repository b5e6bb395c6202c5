"""Memory integrity across datasets (Tannugi et al. 2019; docs/seed-systems.md): fine-tuning
strategies and their table.

A simplified VGG (48 × 48 grey, ≈ 19.2 M parameters, :func:`~gazelab.models.architectures.
simplified_vgg`) is trained on a *source* dataset, then adapted to a *target* with each
strategy, using 50 % and 100 % of the target's training data:

====== =================================================================================
BL     baseline: the source model as it is
FC     fine-tune the fully connected layers (``fc1``, ``fc2``, ``scores``)
FC+CL  those plus the last conv layer (``conv3_2`` and its batch norm ``bn3_2``)
RE     retrain every layer, starting from the source model
FU     train from scratch on the merged source + target training sets
====== =================================================================================

Each model is tested on the source test set and on the target test set ("memory
integrity": how much of the source a strategy keeps while it learns the target). Splits
are 80 / 10 / 10 and subject-independent where the images have subject ids. All runs use
:func:`gazelab.models.training.train_run` (Adam, the same records); the best validation
epoch (on the set being trained for) is kept.

Config (TOML)::

    [transfer]
    source = "fer+:/data/FERPlus"          # any image spec; synthetic:...:renderer=a here
    target = "ck+:/data/CK+"
    fractions = [0.5, 1.0]
    width = 1.0                            # 1.0 = the paper's 19.2 M parameters
    fine_tune_epochs = 10                  # default: [training] epochs
    fine_tune_learning_rate = 1e-4         # default: [training] learning_rate / 10
    [training]
    input_size = 48
    epochs = 20
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.errors import GazelabError
from gazelab.fileio import atomic_write, save_model, write_csv_rows

STRATEGIES = ("BL", "FC", "FC+CL", "RE", "FU")
TRAINED_LAYERS: dict[str, tuple[str, ...] | None] = {
    "BL": (),
    "FC": ("fc1", "fc2", "scores"),
    "FC+CL": ("conv3_2", "bn3_2", "fc1", "fc2", "scores"),
    "RE": None,  # every layer
    "FU": None,  # every layer, from scratch
}
"""Layers each strategy trains (``None``: all)."""


class TransferError(GazelabError, ValueError):
    """Bad strategy, fractions or data for a memory-integrity experiment."""


def strategy_plan(model: Any, strategy: str, learning_rate: float) -> Any:
    """The :class:`~gazelab.models.training.TrainPlan` of a strategy: only the variables of
    the layers in :data:`TRAINED_LAYERS` learn; every other variable is frozen, batch-norm
    statistics of the frozen layers included (put back after every step)."""
    from gazelab.models.training import TrainPlan

    if strategy not in STRATEGIES:
        raise TransferError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    names = TRAINED_LAYERS[strategy]
    if names == ():
        raise TransferError("BL trains nothing on the target: it is the source model as is")
    if names is None:
        return TrainPlan(model)
    missing = [n for n in names if n not in {la.name for la in model.layers}]
    if missing:
        raise TransferError(f"strategy {strategy} trains layers {missing} that model "
                            f"{model.name!r} does not have")  # fmt: skip
    variables = [v for n in names for v in model.get_layer(n).trainable_variables]
    frozen = [v for la in model.layers if la.name not in names for v in la.non_trainable_variables]
    return TrainPlan(model, groups=[(variables, learning_rate)], restore=frozen)


@dataclass(frozen=True)
class TransferSettings:
    """The ``[transfer]`` section."""

    source: str = "synthetic:3000:0:48:subjects=60"
    target: str = "synthetic:1000:1:48:subjects=30:renderer=b"
    fractions: tuple[float, ...] = (0.5, 1.0)
    width: float = 1.0
    fine_tune_epochs: int = 0  # 0 = [training] epochs
    fine_tune_learning_rate: float = 0.0  # 0 = [training] learning_rate / 10
    strategies: tuple[str, ...] = STRATEGIES

    def __post_init__(self) -> None:
        bad = [f for f in self.fractions if not 0 < f <= 1]
        if bad or not self.fractions:
            raise TransferError(f"fractions {list(self.fractions)}: give values in (0, 1]")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise TransferError(f"unknown strategies {unknown}; choose from {STRATEGIES}")
        if not 0 < self.width <= 4:
            raise TransferError(f"width = {self.width}: give a scale in (0, 4]")


@dataclass
class TransferConfig:
    transfer: TransferSettings
    settings: Any
    source: str = ""
    text: str = ""


def load_transfer_config(path: str | Path) -> TransferConfig:
    from gazelab.settings import Settings, SettingsError, dataclass_section, read_toml_file

    p = Path(path)
    text, data = read_toml_file(p, "transfer config")
    tr = dict(data.pop("transfer", {}))
    for key in ("fractions", "strategies"):
        if isinstance(tr.get(key), list):
            tr[key] = tuple(tr[key])
    ts = dataclass_section(TransferSettings, tr, str(p), "transfer", (TransferError,))
    missing = [k for k in ("source", "target") if k not in tr]
    if missing:
        # A default data set would be trained on in silence: say which one to name instead.
        example = {"source": '"fer+:/data/FERPlus"', "target": '"ck+:/data/CK+"'}[missing[0]]
        demo = getattr(TransferSettings, missing[0])
        raise SettingsError(
            f"{p}: [transfer] names no {' and no '.join(missing)}; give the data set(s), e.g. "
            f"{missing[0]} = {example} (the synthetic demo's is {missing[0]} = \"{demo}\")"
        )
    return TransferConfig(ts, Settings.from_dict(data, source=str(p)), str(p), text)


def fraction_subset(n: int, fraction: float, seed: int) -> NDArray[np.int64]:
    """The first ``round(fraction · n)`` of a seeded permutation of ``range(n)``: the 50 %
    subset is contained in the 100 % set, and the same for every strategy."""
    k = max(1, int(round(fraction * n)))
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def run_transfer(
    cfg: TransferConfig,
    out: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    max_steps: int | None = None,
) -> list[dict[str, Any]]:
    """Every strategy at every fraction; writes ``table.csv`` (one row per strategy and
    fraction: source and target test accuracy), ``table.md`` (the paper's layout),
    ``transfer.json`` and each run's model and curves."""
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.models.architectures import simplified_vgg
    from gazelab.models.training import (
        LabelledImages,
        accuracy,
        load_labelled,
        split_indices,
        train_data,
        train_run,
    )

    ts, t = cfg.transfer, cfg.settings.training
    if t.strategy != "default":
        raise TransferError("memory-integrity runs train with [training] strategy = 'default'")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "config.toml", cfg.text)
    atomic_write(out / "settings.toml", cfg.settings.to_toml())
    n_classes = len(CLASSES)
    size = t.input_size
    shape: tuple[int, int, int] = (size, size, 1)

    def splits(spec: str, seed: int) -> tuple[LabelledImages, LabelledImages, LabelledImages]:
        d = load_labelled(spec, size, 1)
        a, b, c = split_indices(d.y, d.subjects, (0.8, 0.1, 0.1), seed)
        if progress:
            subj = "subject-independent" if all(s != "" for s in d.subjects) else "stratified"
            progress(f"{spec}: {len(a)} / {len(b)} / {len(c)} train / val / test ({subj})")
        return d.take(a), d.take(b), d.take(c)

    s_tr, s_va, s_te = splits(ts.source, t.seed)
    t_tr, t_va, t_te = splits(ts.target, t.seed + 1)

    def new_model() -> Any:
        from gazelab.models.training import TrainPlan

        return TrainPlan(simplified_vgg(shape, n_classes, ts.width))

    def test(model: Any) -> dict[str, float]:
        return {"source_test": accuracy(model, s_te.x, s_te.y),
                "target_test": accuracy(model, t_te.x, t_te.y)}  # fmt: skip

    rows: list[dict[str, Any]] = []
    bl = train_run(t, train_data(s_tr, s_va), name="BL", out=out / "BL", plan=new_model,
                   restore_best=True, save_best=False, max_steps=max_steps, progress=progress,
                   n_classes=n_classes)  # fmt: skip
    save_model(bl.model, out / "BL" / "model.keras")
    bl_weights = bl.model.get_weights()
    rows.append({"strategy": "BL", "fraction": None, **test(bl.model),
                 "trained_layers": "", "target_train_images": 0, "seconds": bl.seconds})  # fmt: skip
    ft = dataclasses.replace(
        t,
        epochs=ts.fine_tune_epochs or t.epochs,
        learning_rate=ts.fine_tune_learning_rate or t.learning_rate / 10,
    )
    subsets = {f: t_tr.take(fraction_subset(len(t_tr), f, t.seed)) for f in ts.fractions}
    for strategy in ts.strategies:
        if strategy == "BL":
            continue
        for frac, sub in subsets.items():
            name = f"{strategy}-{round(100 * frac)}"
            if strategy == "FU":
                merged = _concat(s_tr, sub)
                r = train_run(t, train_data(merged, _concat(s_va, t_va)), name=name,
                              out=out / name, plan=new_model, restore_best=True, save_best=False,
                              max_steps=max_steps, progress=progress,
                              n_classes=n_classes)  # fmt: skip
            else:
                tf.keras.utils.set_random_seed(t.seed)
                model = simplified_vgg(shape, n_classes, ts.width)
                model.set_weights(bl_weights)
                plan = functools.partial(strategy_plan, model, strategy, ft.learning_rate)
                r = train_run(ft, train_data(sub, t_va), name=name, out=out / name, plan=plan,
                              restore_best=True, save_best=False, max_steps=max_steps, progress=progress,
                              n_classes=n_classes)  # fmt: skip
            save_model(r.model, out / name / "model.keras")
            layers = TRAINED_LAYERS[strategy]
            rows.append({"strategy": strategy, "fraction": frac, **test(r.model),
                         "trained_layers": "all" if layers is None else " ".join(layers),
                         "target_train_images": len(sub), "seconds": r.seconds})  # fmt: skip
    write_table(rows, cfg, out, test_sizes=(len(s_te), len(t_te)))
    return rows


def _concat(a: Any, b: Any) -> Any:
    from gazelab.models.training import LabelledImages

    return LabelledImages(np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]),
                          a.ids + b.ids, np.concatenate([a.subjects, b.subjects]),
                          np.concatenate([a.split, b.split]), f"{a.source} + {b.source}")  # fmt: skip


def table_markdown(rows: Sequence[dict[str, Any]], source: str, target: str) -> str:
    """The paper's layout: one column per strategy and fraction, one row per test set."""
    cols = [(r["strategy"], r["fraction"]) for r in rows]
    head = ["test set"] + [s if f is None else f"{s} {round(100 * f)} %" for s, f in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in (("source_test", f"source ({source})"), ("target_test",
                                                                 f"target ({target})")):  # fmt: skip
        cells = [f"{100 * r[key]:.1f}" for r in rows]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def reading_note(bl_source: float, n_source_test: int, n_target_test: int, n_classes: int) -> str:
    """How to read the table: chance, the size of one test image in points and, when the
    baseline is under twice chance on its *own* source test set, that it did not learn the
    source (then every column is chance plus test-set noise, and a baseline "better" on the
    target than on the source means nothing)."""
    chance = 100 / n_classes
    note = (f"Chance is {chance:.1f} %; the test sets hold {n_source_test} source and "
            f"{n_target_test} target images (one target image = "
            f"{100 / max(1, n_target_test):.1f} points).")  # fmt: skip
    if 100 * bl_source < 2 * chance:
        note += (f" BL scores {100 * bl_source:.1f} % on its own source test set, under twice "
                 "chance: it did not learn the source, so no column here means anything; "
                 "raise [training] epochs or the number of source images, or lower the "
                 "learning rate.")  # fmt: skip
    return note


def write_table(
    rows: list[dict[str, Any]],
    cfg: TransferConfig,
    out: Path,
    *,
    test_sizes: tuple[int, int] | None = None,
) -> None:
    from gazelab import CLASSES

    write_csv_rows(out / "table.csv", rows)
    ts = cfg.transfer
    md = (f"Memory integrity: accuracy (%) on the source and target test sets; "
          f"simplified VGG width {ts.width}, {cfg.settings.training.input_size} px\n\n"
          + table_markdown(rows, ts.source, ts.target))  # fmt: skip
    bl = [r for r in rows if r["strategy"] == "BL"]
    if test_sizes is not None and bl:
        md += "\n" + reading_note(bl[0]["source_test"], *test_sizes, len(CLASSES)) + "\n"
    atomic_write(out / "table.md", md)
    atomic_write(out / "transfer.json", json.dumps(
        {"transfer": dataclasses.asdict(ts), "rows": rows}, indent=2) + "\n")  # fmt: skip

"""Trainer and Trainee training (SPEC §8): one training loop for both.

A run trains a classifier from :data:`~gazelab.models.architectures.ARCHITECTURES`
with Adam, class-weighted cross-entropy and the SPEC §8 augmentation
(rotation ±25°, shift 10 %, zoom ±15 %, channel shift 20 %, brightness
0.5–1.5, horizontal flip), in a custom loop so that every step's loss is
recorded exactly and the input can switch from masked to unmasked images
between epochs (the Trainee schedule: masked for ``masked_epochs``, then
unmasked; validation always unmasked). Validation macro-F1 is computed every
epoch (and every ``eval_every_steps``); the best epoch's model is kept as
``best.keras``.

Reproducibility: ``tf.keras.utils.set_random_seed`` and
``enable_op_determinism``; one input thread; shuffling seeded per epoch. Two
identical runs give identical per-step losses (tested).

Scale: ``training.strategy`` = ``default`` | ``mirrored`` |
``multi_worker_mirrored``; the input is a ``tf.data`` pipeline distributed by
the strategy (auto-sharded by data), the loss averaged over the global batch.

TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.settings import TrainingSettings


class TrainingError(ValueError):
    """A run cannot start (bad data, masks that do not match the images, …)."""


@dataclass
class TrainData:
    """Model-input arrays (``[0, 1]`` floats) with labels and ids."""

    x_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    ids_train: list[str]
    x_val: NDArray[np.float32]
    y_val: NDArray[np.int64]
    ids_val: list[str]
    source: str = ""


def load_training_data(
    spec: str, input_size: int, channels: int = 1, *, val_fraction: float = 0.2, seed: int = 0
) -> TrainData:
    """Training and validation images from an image source spec (``synthetic:N:SEED[:SIZE]``,
    ``folder:PATH``, ``ck+:PATH``, ``fer+:PATH``, ``affectnet:PATH``). The dataset's own
    split is used where it has one; otherwise a seeded stratified split."""
    from sklearn.model_selection import train_test_split

    from gazelab.models.architectures import to_model_input

    kind, _, rest = spec.partition(":")
    shape = (input_size, input_size, channels)
    if kind == "synthetic":
        from gazelab.annotation.session import open_image_source

        src = open_image_source(spec)
        ids = list(src.ids)
        labels = np.array([src.labels[i] for i in ids], dtype=np.int64)
        images: Any = [src.image(i) for i in ids]
        split = np.array(["all"] * len(ids), dtype=object)
    else:
        from gazelab.models.datasets.library import load_dataset

        ds = load_dataset(kind, rest)
        ids = list(ds.ids)
        labels = np.asarray(ds.labels, dtype=np.int64)
        images = [ds.image(i) for i in range(len(ids))]
        split = np.asarray(ds.split, dtype=object)
    if len(ids) < 4:
        raise TrainingError(f"{spec}: {len(ids)} image(s) are too few to train on")
    x = to_model_input(images, shape)
    idx = np.arange(len(ids))
    if (split == "train").any() and (split == "val").any():
        tr, va = idx[split == "train"], idx[split == "val"]
    else:
        strat = labels if np.bincount(labels).min() >= 2 else None
        tr, va = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=strat)
        tr, va = np.sort(tr), np.sort(va)
    return TrainData(x[tr], labels[tr], [ids[i] for i in tr], x[va], labels[va],
                     [ids[i] for i in va], spec)  # fmt: skip


def make_strategy(name: str) -> Any:
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingError(
        f"unknown strategy {name!r}; choose default, mirrored, multi_worker_mirrored"
    )


def augmenter(seed: int) -> Any:
    """The SPEC §8 augmentation as Keras preprocessing layers (+ brightness and channel
    shift as plain TF ops), applied on the batch in the training step."""
    import tensorflow as tf

    L = tf.keras.layers
    geometric = tf.keras.Sequential(
        [
            L.RandomFlip("horizontal", seed=seed),
            L.RandomRotation(25 / 360, fill_mode="nearest", seed=seed + 1),
            L.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 2),
            L.RandomZoom((-0.15, 0.15), fill_mode="nearest", seed=seed + 3),
        ],
        name="augment",
    )
    gen = tf.random.Generator.from_seed(seed + 4)

    def apply(x: Any) -> Any:
        x = geometric(x, training=True)
        n, c = tf.shape(x)[0], tf.shape(x)[-1]
        brightness = gen.uniform([n, 1, 1, 1], 0.5, 1.5)
        shift = gen.uniform(tf.stack([n, 1, 1, c]), -0.2, 0.2)
        return tf.clip_by_value(x * brightness + shift, 0.0, 1.0)

    return apply


@dataclass
class RunResult:
    name: str
    steps: list[dict[str, Any]]  # one row per step (eval columns where evaluated)
    epochs: list[dict[str, Any]]
    best_f1: float
    final_f1: float
    out: Path | None
    confusion: list[list[int]] = field(default_factory=list)
    replicas: int = 1

    def eval_curve(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """(step, validation macro-F1) at every evaluation."""
        rows = [r for r in self.steps if r.get("val_macro_f1") is not None]
        return (np.array([r["step"] for r in rows], dtype=np.int64),
                np.array([r["val_macro_f1"] for r in rows], dtype=np.float64))  # fmt: skip


def _class_weights(y: NDArray[np.int64], n_classes: int) -> NDArray[np.float32]:
    """scikit-learn's "balanced" weights for the classes present (0 for absent ones)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    w = np.zeros(n_classes)
    w[present] = compute_class_weight("balanced", classes=present, y=y)
    return w.astype(np.float32)


def train_run(
    training: TrainingSettings,
    data: TrainData,
    *,
    name: str = "run",
    out: str | Path | None = None,
    masked_train: NDArray[np.float32] | None = None,
    masked_epochs: int | None = None,
    max_steps: int | None = None,
    progress: Callable[[str], None] | None = None,
    n_classes: int = len(CLASSES),
) -> RunResult:
    """Train one model. With ``masked_train`` (the training images ⊙ masks, same order),
    the first ``masked_epochs`` (default ``training.masked_epochs``) use them, the rest the
    unmasked images. ``max_steps`` stops early (tests)."""
    import tensorflow as tf
    from sklearn.metrics import confusion_matrix, f1_score

    from gazelab.models.architectures import build_model

    t = training
    if masked_train is not None and masked_train.shape != data.x_train.shape:
        raise TrainingError(
            f"masked images {masked_train.shape} do not match the training images "
            f"{data.x_train.shape}"
        )
    k_masked = (
        (t.masked_epochs if masked_epochs is None else masked_epochs)
        if masked_train is not None
        else 0
    )
    tf.keras.utils.set_random_seed(t.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(t.strategy)
    replicas = strategy.num_replicas_in_sync
    batch = t.batch_size
    if batch % replicas:
        raise TrainingError(f"batch_size {batch} must be a multiple of the {replicas} replicas")
    shape = tuple(int(v) for v in data.x_train.shape[1:])
    with strategy.scope():
        model = build_model(t.architecture, shape, n_classes)  # type: ignore[arg-type]
        opt = tf.keras.optimizers.Adam(t.learning_rate)
        aug = augmenter(t.seed) if t.augment else None
    weights = (
        _class_weights(data.y_train, n_classes)
        if t.class_weighted
        else np.ones(n_classes, np.float32)
    )
    ce = tf.keras.losses.SparseCategoricalCrossentropy(reduction=tf.keras.losses.Reduction.NONE)

    def step_fn(x: Any, y: Any, w: Any) -> Any:
        if aug is not None:
            x = aug(x)
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            loss = tf.nn.compute_average_loss(ce(y, p) * w, global_batch_size=batch)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def dist_step(x: Any, y: Any, w: Any) -> Any:
        per_replica = strategy.run(step_fn, args=(x, y, w))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def dataset(x: NDArray[np.float32], epoch: int) -> Any:
        w = weights[data.y_train]
        ds = tf.data.Dataset.from_tensor_slices((x, data.y_train, w))
        ds = ds.shuffle(len(x), seed=t.seed * 1000 + epoch, reshuffle_each_iteration=False)
        ds = ds.batch(batch, drop_remainder=True)
        opts = tf.data.Options()
        opts.deterministic = True
        opts.threading.private_threadpool_size = 1
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return strategy.experimental_distribute_dataset(ds.with_options(opts))

    def evaluate() -> tuple[float, float, NDArray[np.int64]]:
        p = model.predict(data.x_val, batch_size=256, verbose=0)
        loss = float(np.mean(ce(data.y_val, p).numpy()))
        pred = p.argmax(axis=1)
        f1 = float(f1_score(data.y_val, pred, average="macro", labels=list(range(n_classes)),
                            zero_division=0))  # fmt: skip
        return loss, f1, pred

    steps: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    best, best_pred = -1.0, None
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    step = 0
    steps_per_epoch = len(data.x_train) // batch
    if steps_per_epoch == 0:
        raise TrainingError(
            f"{len(data.x_train)} training images are fewer than one batch ({batch})"
        )
    stop = False
    for epoch in range(1, t.epochs + 1):
        t0 = time.monotonic()
        phase = "masked" if epoch <= k_masked else "unmasked"
        x = masked_train if phase == "masked" and masked_train is not None else data.x_train
        losses = []
        for xb, yb, wb in dataset(x, epoch):
            loss = float(dist_step(xb, yb, wb))
            step += 1
            losses.append(loss)
            row: dict[str, Any] = {"step": step, "epoch": epoch, "phase": phase, "loss": loss,
                                   "val_loss": None, "val_macro_f1": None}  # fmt: skip
            if t.eval_every_steps and step % t.eval_every_steps == 0 and step % steps_per_epoch:
                row["val_loss"], row["val_macro_f1"], _ = evaluate()
            steps.append(row)
            if max_steps is not None and step >= max_steps:
                stop = True
                break
        vl, vf, pred = evaluate()
        steps[-1]["val_loss"], steps[-1]["val_macro_f1"] = vl, vf
        epochs.append({"epoch": epoch, "phase": phase, "steps": step,
                       "train_loss": float(np.mean(losses)), "val_loss": vl, "val_macro_f1": vf,
                       "seconds": round(time.monotonic() - t0, 2)})  # fmt: skip
        if progress:
            progress(f"{name} epoch {epoch}/{t.epochs} ({phase}): loss {np.mean(losses):.4f}, "
                     f"val macro-F1 {vf:.3f}")  # fmt: skip
        if vf > best:
            best, best_pred = vf, pred
            if out_dir is not None:
                model.save(out_dir / "best.keras")
        if stop:
            break
    conf = confusion_matrix(data.y_val, best_pred, labels=list(range(n_classes))).tolist()
    result = RunResult(name, steps, epochs, best, epochs[-1]["val_macro_f1"], out_dir, conf,
                       replicas)  # fmt: skip
    if out_dir is not None:
        write_run(result, out_dir, t)
    return result


def write_run(result: RunResult, out: Path, training: TrainingSettings) -> None:
    """steps.csv, epochs.csv, run.json (settings), learning_curve.png, confusion.png."""
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for fname, rows in (("steps.csv", result.steps), ("epochs.csv", result.epochs)):
        with open(out / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    (out / "run.json").write_text(json.dumps({
        "name": result.name, "training": dataclasses.asdict(training),
        "best_macro_f1": result.best_f1, "final_macro_f1": result.final_f1,
        "confusion": result.confusion, "classes": list(CLASSES),
    }, indent=2))  # fmt: skip
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    s = [r["step"] for r in result.steps]
    a1.plot(s, [r["loss"] for r in result.steps], lw=0.8)
    a1.set_xlabel("step")
    a1.set_ylabel("training loss")
    es, ef = result.eval_curve()
    a2.plot(es, ef, marker=".")
    a2.set_xlabel("step")
    a2.set_ylabel("validation macro-F1")
    fig.suptitle(result.name)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    from gazelab.analysis.report import plot_confusion

    plot_confusion(ax, result.confusion, f"{result.name}: best macro-F1 {result.best_f1:.3f}")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=80)
    plt.close(fig)


# -- the Trainee experiment ------------------------------------------------------------------
def steps_to_reach(result: RunResult, target: float) -> int | None:
    """First evaluated step whose validation macro-F1 reaches ``target`` (None: never)."""
    s, f = result.eval_curve()
    hit = np.nonzero(f >= target - 1e-12)[0]
    return int(s[hit[0]]) if len(hit) else None


def experiment_runs(mask_names: Sequence[str]) -> list[tuple[str, str | None, bool]]:
    """(run name, mask, then unmasked?) of the experiment: no mask; each mask alone; each
    mask then no mask (seven runs for negative / mean / perceptive)."""
    runs: list[tuple[str, str | None, bool]] = [("no_mask", None, False)]
    runs += [(m, m, False) for m in mask_names]
    runs += [(f"{m}_then_no_mask", m, True) for m in mask_names]
    return runs


def run_experiment(
    training: TrainingSettings,
    data: TrainData,
    masked: dict[str, NDArray[np.float32]],
    out: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    max_steps: int | None = None,
) -> list[dict[str, Any]]:
    """The Trainee experiment: every run of :func:`experiment_runs`, same seed and data;
    writes each run's files plus ``summary.csv`` / ``summary.md`` / ``curves.png``.
    ``masked``: mask name -> the training images ⊙ that mask."""
    out = Path(out)
    results: dict[str, RunResult] = {}
    for name, mask, then_none in experiment_runs(list(masked)):
        results[name] = train_run(
            training, data, name=name, out=out / name,
            masked_train=masked[mask] if mask else None,
            masked_epochs=(training.masked_epochs if then_none else training.epochs),
            max_steps=max_steps, progress=progress,
        )  # fmt: skip
    rows = summarise(results)
    write_summary(rows, results, out)
    return rows


def summarise(results: dict[str, RunResult]) -> list[dict[str, Any]]:
    base = results["no_mask"]
    target = base.final_f1
    base_steps = steps_to_reach(base, target)
    rows = []
    for name, r in results.items():
        st = steps_to_reach(r, target)
        rows.append({
            "run": name,
            "final_macro_f1": round(r.final_f1, 4),
            "best_macro_f1": round(r.best_f1, 4),
            "steps_to_baseline_final": st,
            "ratio_to_baseline_steps": (round(st / base_steps, 3)
                                        if st is not None and base_steps else None),
            "total_steps": r.steps[-1]["step"],
        })  # fmt: skip
    return rows


def write_summary(rows: list[dict[str, Any]], results: dict[str, RunResult], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    target = results["no_mask"].final_f1
    lines = [
        f"Baseline (no mask) final validation macro-F1: {target:.4f}",
        "",
        "| run | final macro-F1 | best macro-F1 | steps to baseline final | ratio to baseline |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        st = "never" if r["steps_to_baseline_final"] is None else str(r["steps_to_baseline_final"])
        ratio = (
            "–" if r["ratio_to_baseline_steps"] is None else f"{r['ratio_to_baseline_steps']:.2f}"
        )
        lines.append(f"| {r['run']} | {r['final_macro_f1']:.4f} | {r['best_macro_f1']:.4f} | "
                     f"{st} | {ratio} |")  # fmt: skip
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, res in results.items():
        xs, ys = res.eval_curve()
        ax.plot(xs, ys, label=name, lw=1.2 if name == "no_mask" else 0.9,
                ls="-" if "then" in name or name == "no_mask" else "--")  # fmt: skip
    ax.axhline(target, color="grey", lw=0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("validation macro-F1 (unmasked)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=80)
    plt.close(fig)


# -- run configuration files ------------------------------------------------------------------
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
    import tomllib

    from gazelab.settings import Settings, SettingsError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise SettingsError(f"cannot read run config {p}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{p}: not valid TOML: {exc}") from exc
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

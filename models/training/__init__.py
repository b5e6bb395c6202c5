"""Trainer and Trainee training (SPEC §8): one training loop for both.

A run trains a classifier from :data:`~gazelab.models.architectures.ARCHITECTURES`
with Adam, class-weighted cross-entropy and the SPEC §8 augmentation
(rotation ±25°, shift 10 %, zoom ±15 %, channel shift 20 %, brightness
0.5–1.5, horizontal flip), in a custom loop so that every step's loss is
recorded exactly and the input can switch from masked to unmasked images
between epochs (the Trainee schedule: masked for ``masked_epochs``, then
unmasked; validation always unmasked). Validation macro-F1 (over the classes present in
the validation labels: :mod:`gazelab.models.scores`) is computed every
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

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.errors import GazelabError
from gazelab.fileio import atomic_open, atomic_write, save_model, write_csv_rows
from gazelab.settings import TrainingSettings


class TrainingError(GazelabError, ValueError):
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


@dataclass
class LabelledImages:
    """A whole image set as model input: ``x`` ``(N, H, W, C)`` in ``[0, 1]``, labels, ids,
    subject ids (``''`` where the dataset has none) and the dataset's own split."""

    x: NDArray[np.float32]
    y: NDArray[np.int64]
    ids: list[str]
    subjects: NDArray[np.object_]
    split: NDArray[np.object_]
    source: str = ""

    def take(self, index: Sequence[int] | NDArray[np.int64]) -> LabelledImages:
        i = np.asarray(index, dtype=np.int64)
        return LabelledImages(self.x[i], self.y[i], [self.ids[k] for k in i], self.subjects[i],
                              self.split[i], self.source)  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)


def load_labelled(
    spec: str,
    input_size: int,
    channels: int = 1,
    *,
    last_frames: int = 1,
    crop: float = 1.0,
) -> LabelledImages:
    """Every image of an image spec (any registered layout:
    :func:`~gazelab.models.datasets.registry.open_image_set`) at the model's input size.
    ``last_frames``: CK+ frames labelled per sequence (the first frame is neutral; layouts
    without sequences ignore it). ``crop``: keep the central square of this fraction of the
    shorter side (a fixed face crop for centred, frontal datasets such as CK+)."""
    from gazelab.models.architectures import to_model_input
    from gazelab.models.datasets.registry import open_image_set, parse_image_spec

    if not 0.1 <= crop <= 1.0:
        raise TrainingError(f"crop = {crop}: give the kept fraction of the side, 0.1-1")
    takes_frames = "last_frames" in parse_image_spec(spec)[0].options()
    ds = open_image_set(spec, **({"last_frames": last_frames} if takes_frames else {}))
    if len(ds) < 4:
        raise TrainingError(f"{spec}: {len(ds)} image(s) are too few to train on")

    def cropped(img: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if crop >= 1.0:
            return img
        h, w = img.shape[:2]
        side = max(1, int(round(min(h, w) * crop)))
        top, left = (h - side) // 2, (w - side) // 2
        return img[top : top + side, left : left + side]

    x = to_model_input([cropped(ds.image(i)) for i in range(len(ds))],
                       (input_size, input_size, channels))  # fmt: skip
    return LabelledImages(x, np.asarray(ds.labels, np.int64), list(ds.ids),
                          np.asarray(ds.subjects, dtype=object),
                          np.asarray(ds.split, dtype=object), spec)  # fmt: skip


def split_indices(
    labels: NDArray[np.int64],
    subjects: NDArray[np.object_] | None,
    fractions: Sequence[float],
    seed: int = 0,
) -> list[NDArray[np.int64]]:
    """Split ``range(N)`` into parts of the given ``fractions`` (summing to 1). With subject
    ids (none empty) the split is subject-independent: each subject's images go to one part
    only (subjects shuffled, assigned until each part holds its share of images); otherwise
    a seeded stratified split."""
    from sklearn.model_selection import train_test_split

    fr = np.asarray(fractions, dtype=np.float64)
    if fr.min() <= 0 or abs(fr.sum() - 1) > 1e-9:
        raise TrainingError(f"split fractions {list(fractions)} must be > 0 and sum to 1")
    n = len(labels)
    idx = np.arange(n)
    if subjects is not None and len(subjects) == n and all(s != "" for s in subjects):
        uniq = np.array(sorted(set(subjects)), dtype=object)
        if len(uniq) < len(fr):
            raise TrainingError(
                f"{len(uniq)} subject(s) cannot be split into {len(fr)} subject-independent parts"
            )
        np.random.default_rng(seed).shuffle(uniq)
        counts = {u: int(np.sum(subjects == u)) for u in uniq}
        bounds = np.cumsum(fr)[:-1] * n
        part_of: dict[Any, int] = {}
        done, k, in_k = 0, 0, 0
        for j, u in enumerate(uniq):
            # next part when this one has its share (or the subjects left are just enough
            # to give every later part one)
            later = len(fr) - 1 - k
            if later and in_k and (done >= bounds[k] or len(uniq) - j <= later):
                k, in_k = k + 1, 0
            part_of[u] = k
            in_k += 1
            done += counts[u]
        parts = np.array([part_of[s] for s in subjects])
        return [idx[parts == k] for k in range(len(fr))]
    out, rest, rest_fr = [], idx, 1.0
    for f in fr[:-1]:
        y = labels[rest]
        per_class = np.bincount(y)
        n_take = int(round(f / rest_fr * len(rest)))
        smallest = min(n_take, len(rest) - n_take)
        # stratify when every class can be in both parts (else sklearn refuses)
        stratifiable = per_class[per_class > 0].min() >= 2 and smallest >= (per_class > 0).sum()
        strat = y if stratifiable else None
        take, rest = train_test_split(rest, train_size=f / rest_fr, random_state=seed,
                                      stratify=strat)  # fmt: skip
        out.append(np.sort(take))
        rest_fr -= f
    out.append(np.sort(rest))
    return out


def load_training_data(
    spec: str, input_size: int, channels: int = 1, *, val_fraction: float = 0.2, seed: int = 0
) -> TrainData:
    """Training and validation images from an image source spec (see :func:`load_labelled`).
    The dataset's own split is used where it has one (train and val); a set split into
    train and test only gives its validation images from the training part and leaves the
    test images out; a set without a split is split here. Splits made here are seeded and
    subject-independent where every image has a subject id (CK+ file names), else
    stratified."""
    d = load_labelled(spec, input_size, channels)
    idx = np.arange(len(d))
    if (d.split == "train").any() and (d.split == "val").any():
        tr, va = idx[d.split == "train"], idx[d.split == "val"]
    else:
        pool = idx[d.split == "train"] if (d.split == "train").any() else idx
        a, b = split_indices(d.y[pool], d.subjects[pool], (1 - val_fraction, val_fraction), seed)
        tr, va = pool[a], pool[b]
    return train_data(d.take(tr), d.take(va))


def train_data(train: LabelledImages, val: LabelledImages) -> TrainData:
    return TrainData(train.x, train.y, train.ids, val.x, val.y, val.ids, train.source)


def accuracy(model: Any, x: NDArray[np.float32], y: NDArray[np.int64]) -> float:
    """Fraction of ``x`` whose predicted class is ``y``."""
    pred = np.asarray(model.predict(x, batch_size=256, verbose=0)).argmax(axis=-1)
    return float(np.mean(pred == y))


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


def worker_role(strategy: Any) -> tuple[bool, str]:
    """(is this process the chief, a tag naming it) under ``strategy``.

    Multi-worker: the ``chief`` task, or worker 0 when the cluster has no chief (as
    TensorFlow's own tutorials decide); one process otherwise.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    if task_type is None or resolver is None:
        return True, "chief"
    spec = resolver.cluster_spec().as_dict()
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)
    return chief, f"{task_type}-{task_id}"


class _Backup:
    """BackupAndRestore for the custom loop (Keras' callback serves ``fit`` only).

    After every epoch the chief writes ``<out>/backup/`` (a TF checkpoint of the model,
    its optimizers and the epoch, plus ``history.json``, written first); other workers
    write the same checkpoint to a scratch folder they delete (the collective save of
    TensorFlow's multi-worker guide). A restarted run restores the last complete epoch
    and goes on from the next one, so no epoch is lost or repeated; the folder is
    removed when the run ends normally. Data order is seeded per epoch, so a resumed
    run sees the same batches; the augmentation's random state is not restored.
    """

    def __init__(self, out: Path, chief: bool, tag: str, objects: dict[str, Any]) -> None:
        import tensorflow as tf

        self.dir = out / "backup"
        self.chief = chief
        self.write_dir = self.dir if chief else out / f".backup-{tag}"
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.ckpt = tf.train.Checkpoint(epoch=self.epoch, **objects)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(self.write_dir), max_to_keep=1)

    def restore(self, fingerprint: str) -> tuple[int, dict[str, Any]]:
        """(epochs already done, the history saved with them); (0, {}) for a fresh run.

        Raises
        ------
        TrainingError
            The backup was made by a run with other settings or data.
        """
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(self.dir))
        if latest is None:
            return 0, {}
        try:
            history = json.loads((self.dir / "history.json").read_text())
        except (OSError, ValueError) as exc:
            raise TrainingError(
                f"{self.dir}: the backup's history.json cannot be read ({exc}); delete the "
                "folder to start afresh"
            ) from exc
        if history.get("fingerprint") != fingerprint:
            raise TrainingError(
                f"{self.dir} is the backup of another run (other settings or data); "
                "delete it to start afresh, or give another output folder"
            )
        self.ckpt.restore(latest).assert_existing_objects_matched()
        done = int(self.epoch.numpy())
        history["steps"] = [r for r in history["steps"] if r["epoch"] <= done]
        history["epochs"] = [r for r in history["epochs"] if r["epoch"] <= done]
        return done, history

    def save(self, epoch: int, history: dict[str, Any]) -> None:
        import shutil

        if self.chief:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.dir / "history.json", json.dumps(history))
        self.epoch.assign(epoch)
        self.manager.save(checkpoint_number=epoch)
        if not self.chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)

    def finish(self) -> None:
        import shutil

        if self.chief:
            shutil.rmtree(self.dir, ignore_errors=True)


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
class TrainPlan:
    """What :func:`train_run` trains instead of a fresh registry model.

    ``groups``: (variables, learning rate) pairs, one Adam each; a rate of 0, and every
    trainable variable in no group, is frozen (no update is applied). ``None``: all
    trainable variables at ``training.learning_rate``. ``outputs``: for a model with several
    outputs (ESR branches), the loss is the sum of the first ``outputs`` outputs' losses and
    validation uses their averaged probabilities. ``restore``: variables (batch-norm
    statistics of frozen parts) put back to their starting values after every step.
    """

    model: Any
    groups: list[tuple[list[Any], float]] | None = None
    outputs: int = 1
    restore: list[Any] = field(default_factory=list)


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
    model: Any = None  # the trained model (best epoch's weights with restore_best)
    seconds: float = 0.0

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
    plan: Callable[[], TrainPlan] | None = None,
    restore_best: bool = False,
    save_best: bool = True,
    backup_every_epoch: bool = True,
) -> RunResult:
    """Train one model. With ``masked_train`` (the training images ⊙ masks, same order),
    the first ``masked_epochs`` (default ``training.masked_epochs``) use them, the rest the
    unmasked images. ``max_steps`` stops early (tests).

    ``plan``: called inside the distribution strategy's scope, returns the model to train
    and which of its variables learn at which rate (:class:`TrainPlan`; ESR branches,
    fine-tuning strategies); default: a fresh ``training.architecture`` model.
    ``restore_best``: leave the model with the weights of its best validation epoch.
    ``save_best``: write ``best.keras`` into ``out`` at every new best epoch (experiments
    that save their own final models turn it off).
    ``backup_every_epoch`` (with ``out``): back up after every epoch and resume from the
    backup when the run is started again after a crash (:class:`_Backup`); a backup made
    with other settings or data is refused. ``restore_best`` after a resume keeps the
    best of the epochs run since.
    Multi-worker: every worker runs this; only the chief writes ``out``."""
    import dataclasses

    import tensorflow as tf

    from gazelab.models.architectures import build_model
    from gazelab.models.scores import confusion_counts, macro_f1

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
    h, w, c = (int(v) for v in data.x_train.shape[1:])
    shape = (h, w, c)
    t_start = time.monotonic()
    with strategy.scope():
        tp = (
            plan() if plan is not None else TrainPlan(build_model(t.architecture, shape, n_classes))
        )
        model = tp.model
        groups = (
            tp.groups if tp.groups is not None else [(model.trainable_variables, t.learning_rate)]
        )
        active = [(list(vs), tf.keras.optimizers.Adam(lr)) for vs, lr in groups if vs and lr > 0]
        if not active:
            raise TrainingError("nothing to train: every variable group is empty or at rate 0")
        train_vars = [v for vs, _ in active for v in vs]
        restore = [(v, tf.constant(v.numpy())) for v in tp.restore]
        aug = augmenter(t.seed) if t.augment else None
    weights = (
        _class_weights(data.y_train, n_classes)
        if t.class_weighted
        else np.ones(n_classes, np.float32)
    )
    ce = tf.keras.losses.SparseCategoricalCrossentropy(reduction=tf.keras.losses.Reduction.NONE)
    chief, tag = worker_role(strategy)

    def step_fn(x: Any, y: Any, w: Any) -> Any:
        if aug is not None:
            x = aug(x)
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            ps = p[: tp.outputs] if isinstance(p, list | tuple) else [p]
            loss = tf.add_n([tf.nn.compute_average_loss(ce(y, q) * w, global_batch_size=batch)
                             for q in ps])  # fmt: skip
        grads = tape.gradient(loss, train_vars)
        k = 0
        for vs, opt in active:
            opt.apply_gradients(zip(grads[k : k + len(vs)], vs, strict=True))
            k += len(vs)
        for v, value in restore:
            v.assign(value)
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
        if isinstance(p, list | tuple):
            p = np.mean(p[: tp.outputs], axis=0)
        loss = float(np.mean(ce(data.y_val, p).numpy()))
        pred = p.argmax(axis=1)
        # over the classes present in the validation labels (an absent class is not a 0)
        return loss, macro_f1(data.y_val, pred, n_classes), pred

    steps: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    best, best_pred, best_weights = -1.0, None, None
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    step, first_epoch = 0, 1
    backup = None
    if out_dir is not None and backup_every_epoch:
        objects: dict[str, Any] = {"model": model}
        objects.update({f"optimizer_{i}": opt for i, (_, opt) in enumerate(active)})
        backup = _Backup(out_dir, chief, tag, objects)
        fingerprint = json.dumps([name, dataclasses.asdict(t), list(data.x_train.shape),
                                  list(data.x_val.shape), k_masked], sort_keys=True)  # fmt: skip
        done, history = backup.restore(fingerprint)
        if done:
            steps, epochs = history["steps"], history["epochs"]
            best = float(history["best"])
            best_pred = np.asarray(history["best_pred"], dtype=np.int64)
            step, first_epoch = (steps[-1]["step"] if steps else 0), done + 1
            if progress:
                progress(f"{name}: resumed from the backup after epoch {done} (step {step})")
    steps_per_epoch = len(data.x_train) // batch
    if steps_per_epoch == 0:
        raise TrainingError(
            f"{len(data.x_train)} training images are fewer than one batch ({batch})"
        )
    stop = False
    for epoch in range(first_epoch, t.epochs + 1):
        t0 = time.monotonic()
        masked_now = masked_train is not None and epoch <= k_masked
        phase = "masked" if masked_now else "unmasked"
        x = masked_train if masked_train is not None and masked_now else data.x_train
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
            tag = f" ({phase})" if k_masked else ""
            progress(f"{name} epoch {epoch}/{t.epochs}{tag}: loss {np.mean(losses):.4f}, "
                     f"val macro-F1 {vf:.3f}")  # fmt: skip
        if vf > best:
            best, best_pred = vf, pred
            if restore_best:
                best_weights = model.get_weights()
            if out_dir is not None and save_best:
                # Every worker saves (the save may take part in collectives); only
                # the chief's copy is kept (TensorFlow's multi-worker saving guide).
                save_model(model, out_dir / ("best.keras" if chief else f".best-{tag}.keras"))
                if not chief:
                    (out_dir / f".best-{tag}.keras").unlink(missing_ok=True)
        if backup is not None and not stop:
            assert best_pred is not None
            backup.save(epoch, {"steps": steps, "epochs": epochs, "best": best,
                                "best_pred": np.asarray(best_pred).tolist(),
                                "fingerprint": fingerprint})  # fmt: skip
        if stop:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    conf = [] if best_pred is None else confusion_counts(data.y_val, best_pred, n_classes).tolist()
    result = RunResult(name, steps, epochs, best, epochs[-1]["val_macro_f1"], out_dir, conf,
                       replicas, model, round(time.monotonic() - t_start, 2))  # fmt: skip
    if out_dir is not None and chief:
        write_run(result, out_dir, t)
    if backup is not None:  # only once the run's files are whole: a kill before resumes
        backup.finish()
    return result


def write_run(result: RunResult, out: Path, training: TrainingSettings) -> None:
    """steps.csv, epochs.csv, run.json (settings, scores), report.md (per-class F1 and the
    confusion matrix with counts, at the best epoch), learning_curve.png, confusion.png."""
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gazelab.models.scores import scores_from_confusion, scores_markdown

    write_csv_rows(out / "steps.csv", result.steps)
    write_csv_rows(out / "epochs.csv", result.epochs)
    k = len(result.confusion)
    names = list(CLASSES) if k == len(CLASSES) else [str(i) for i in range(k)]
    scores = scores_from_confusion(result.confusion, names) if k else None
    atomic_write(out / "run.json", json.dumps({
        "name": result.name, "training": dataclasses.asdict(training),
        "best_macro_f1": result.best_f1, "final_macro_f1": result.final_f1,
        "confusion": result.confusion, "classes": names, "scores_at_best": scores,
    }, indent=2))  # fmt: skip
    if scores is not None:
        atomic_write(
            out / "report.md",
            f"# {result.name}\n\nValidation at the best epoch (validation macro-F1 "
            f"{result.best_f1:.3f}; last epoch {result.final_f1:.3f}).\n\n"
            + scores_markdown(scores, "Validation scores at the best epoch"),
        )
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
    with atomic_open(out / "learning_curve.png") as f:
        fig.savefig(f, format="png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    from gazelab.analysis.report import plot_confusion

    plot_confusion(ax, result.confusion, f"{result.name}: best macro-F1 {result.best_f1:.3f}")
    fig.tight_layout()
    with atomic_open(out / "confusion.png") as f:
        fig.savefig(f, format="png", dpi=80)
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
        masked = [row["step"] for row in r.steps if row.get("phase") == "masked"]
        unmasked = r.steps[-1]["step"] - max(masked, default=0)  # steps after the masked ones
        mixed = bool(masked) and unmasked > 0  # masked epochs, then unmasked ones
        rows.append({
            "run": name,
            "final_macro_f1": round(r.final_f1, 4),
            "best_macro_f1": round(r.best_f1, 4),
            "steps_to_baseline_final": st,
            "ratio_to_baseline_steps": (round(st / base_steps, 3)
                                        if st is not None and base_steps else None),
            "total_steps": r.steps[-1]["step"],
            "unmasked_steps": unmasked,
            "baseline_at_unmasked_steps": (_round(f1_at_step(base, unmasked))
                                           if mixed else None),
        })  # fmt: skip
    return rows


def f1_at_step(result: RunResult, step: int) -> float | None:
    """The run's validation macro-F1 at its last evaluation at or before ``step``."""
    xs, ys = result.eval_curve()
    i = int(np.searchsorted(xs, step, side="right")) - 1
    return float(ys[i]) if i >= 0 else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


LEVEL_F1 = 0.02
"""Macro-F1 differences under this read as level in :func:`reading_note` (a single run
of a few hundred validation images moves by about this much between evaluations)."""


def reading_note(rows: list[dict[str, Any]], n_classes: int = len(CLASSES)) -> list[str]:
    """How to read the summary (:func:`summarise`'s rows): the chance level of macro-F1
    (``n_classes``: the classes present in the validation labels); a
    baseline that did not learn; mask-only runs at or under chance, and why; and each
    masked-then-unmasked run against the baseline after as many unmasked steps."""
    chance = 1 / n_classes
    note = [f"Validation is always on unmasked images; chance macro-F1 is about {chance:.3f}."]
    base = next((r["final_macro_f1"] for r in rows if r["run"] == "no_mask"), None)
    if base is not None and base < 2 * chance:
        return [*note, (
            f"The no-mask baseline ends at {base:.3f}, under twice chance: it did not learn "
            "the task in this budget, so no run here can be compared with it; train longer "
            "(more epochs or images)."
        )]  # fmt: skip
    under = [r["run"] for r in rows
             if r["run"] != "no_mask" and "_then_" not in r["run"]
             and r["final_macro_f1"] <= chance]  # fmt: skip
    if under:
        note.append(
            f"{', '.join(under)} never saw an unmasked image and end at or under chance: "
            "what they learned includes the masks' own shapes (a mask derived from a "
            "model's relevance follows the features that carry the class), which unmasked "
            "images do not have. This is a result, not a fault "
            "(benchmarks/bench_mask_leak.py measures how much class a mask alone carries)."
        )
    mixed = [r for r in rows if r.get("baseline_at_unmasked_steps") is not None]
    if mixed:
        note.append("Do the masked epochs give a warm start (the paper's question)? Each "
                    "masked-then-unmasked run against the baseline after as many unmasked "
                    f"steps (within {LEVEL_F1} counts as level):")  # fmt: skip
    for r in mixed:
        f, b = r["final_macro_f1"], r["baseline_at_unmasked_steps"]
        verdict = "level" if abs(f - b) < LEVEL_F1 else "ahead" if f > b else "behind"
        note.append(f"- {r['run']}: {f:.3f} after {r['unmasked_steps']} unmasked steps, "
                    f"baseline {b:.3f}: {verdict}")  # fmt: skip
    return note


def write_summary(rows: list[dict[str, Any]], results: dict[str, RunResult], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    write_csv_rows(out / "summary.csv", rows)
    from gazelab.models.scores import scores_from_confusion, scores_markdown

    target = results["no_mask"].final_f1
    conf = results["no_mask"].confusion
    base_scores = scores_from_confusion(conf) if len(conf) == len(CLASSES) else None
    over = ("" if base_scores is None else
            f" (macro-F1 over the {len(base_scores['present'])} classes present in the "
            f"validation labels; absent: {', '.join(base_scores['absent']) or 'none'})")  # fmt: skip
    lines = [
        f"Baseline (no mask) final validation macro-F1: {target:.4f}{over}",
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
    n_present = len(base_scores["present"]) if base_scores else len(CLASSES)
    extra = ("" if base_scores is None else
             "\n" + scores_markdown(base_scores, "The baseline (no mask) at its best epoch"))  # fmt: skip
    atomic_write(
        out / "summary.md",
        "\n".join(lines) + "\n\n" + "\n\n".join(reading_note(rows, n_present)) + "\n" + extra,
    )
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
    with atomic_open(out / "curves.png") as f:
        fig.savefig(f, format="png", dpi=80)
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

"""Trainer and Trainee training (docs/algorithms.md#training): one training loop for both.

A run trains a classifier from :data:`~gazelab.models.architectures.ARCHITECTURES`
with Adam, class-weighted cross-entropy and the docs/algorithms.md#training augmentation
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.fileio import save_model
from gazelab.models.training.backup import _Backup
from gazelab.models.training.data import TrainData
from gazelab.models.training.errors import TrainingError
from gazelab.models.training.results import RunResult, write_run
from gazelab.settings import TrainingSettings


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


def augmenter(seed: int) -> Any:
    """The docs/algorithms.md#training augmentation as Keras preprocessing layers (+ brightness and channel
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

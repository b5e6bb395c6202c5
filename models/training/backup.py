"""Per-epoch backup and resume of a training run (the custom loop's BackupAndRestore)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gazelab.fileio import atomic_write
from gazelab.models.training.errors import TrainingError


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

"""One training process of tests/test_distributed.py (a worker, or the one-process run).

    python tests/distributed_worker.py OUT EPOCHS STRATEGY [CRASH_AT_EPOCH]

``TF_CONFIG`` (set by the test) makes it a worker of a two-worker cluster. Trains
the small CNN on planted 32×32 images with a global batch of 16, augmentation off
(so a resumed run sees exactly the same batches) and prints the step losses as one
JSON line. ``CRASH_AT_EPOCH``: the process dies (``os._exit``) when that epoch has
ended, before its backup is written — a crash at the worst moment.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = rng.uniform(0, 0.5, size=(n, 32, 32, 1)).astype(np.float32)
    for k in range(4):
        x[y == k, 4 + 6 * k : 10 + 6 * k, 8:24, 0] += 0.5
    return x, y.astype(np.int64)


def main() -> None:
    out, epochs, strategy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    crash_at = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    from gazelab.models.training import TrainData, train_run
    from gazelab.settings import TrainingSettings

    xt, yt = planted(96, 0)
    xv, yv = planted(32, 1)
    data = TrainData(xt, yt, [f"t{i}" for i in range(96)], xv, yv, [f"v{i}" for i in range(32)])
    t = TrainingSettings(architecture="small_cnn", input_size=32, batch_size=16, epochs=epochs,
                         augment=False, class_weighted=False, strategy=strategy, seed=3)  # fmt: skip

    def progress(line: str) -> None:
        print(line, flush=True)
        if crash_at and f"epoch {crash_at}/" in line:
            os._exit(17)

    r = train_run(t, data, name="trainer", out=out, progress=progress, n_classes=4)
    print("RESULT " + json.dumps({"losses": [s["loss"] for s in r.steps],
                                  "epochs": [e["epoch"] for e in r.epochs],
                                  "replicas": r.replicas}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

"""A run's result and its files: per-step and per-epoch records, scores, learning curve."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.fileio import atomic_open, atomic_write, write_csv_rows
from gazelab.settings import TrainingSettings


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

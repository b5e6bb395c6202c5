"""The Trainee experiment: the same data trained without a mask, with each mask, and with
each mask then none; its summary (steps to the baseline's score, a reading note) and curves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.fileio import atomic_open, atomic_write, write_csv_rows
from gazelab.models.training.data import TrainData
from gazelab.models.training.loop import train_run
from gazelab.models.training.results import RunResult
from gazelab.settings import TrainingSettings


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

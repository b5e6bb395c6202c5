"""Classification scores over the classes a set holds (training, demo and reports).

The project has 8 classes (:data:`gazelab.CLASSES`), but real sets hold fewer: CK+ crops
have no neutral, FER2013 no contempt. An absent class has no true image, so its F1 is
undefined; counting it as 0 (scikit-learn's ``labels=range(8), zero_division=0``) reports
a 7-class set at 7/8 of its value. Here macro-F1 and balanced accuracy average over the
classes *present* in the true labels; predictions into an absent class still count (as
misses of the true class), and the absent classes are named.

Everything follows from the confusion matrix (rows: true class, columns: predicted class,
counts), so a report can be rebuilt from ``run.json``'s matrix alone:

* F1 of class k: ``2 TP / (2 TP + FP + FN)`` (0 when the class is present but never hit);
* macro-F1: the mean F1 over the present classes;
* accuracy: ``trace / total``; balanced accuracy: the mean recall over present classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gazelab import CLASSES


def confusion_counts(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int = len(CLASSES)
) -> NDArray[np.int64]:
    """``(n_classes, n_classes)`` counts: row = true class, column = predicted class.

    Raises
    ------
    ValueError
        Lengths differ or a label is outside ``0 .. n_classes - 1``.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"labels must be class indices 0-{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def scores_from_confusion(
    confusion: ArrayLike, class_names: Sequence[str] = CLASSES
) -> dict[str, Any]:
    """Scores of a confusion matrix (see the module docstring); JSON-ready.

    Returns
    -------
    dict
        ``macro_f1`` and ``balanced_accuracy`` over the present classes, ``accuracy``,
        ``n``, ``present`` / ``absent`` (class names), ``per_class`` (name -> ``f1``,
        ``precision``, ``recall``, ``support``, with ``None`` for absent classes' F1 and
        recall), ``predicted_absent`` (predictions into an absent class) and
        ``confusion`` (the counts as lists).
    """
    c = np.asarray(confusion, dtype=np.int64)
    k = c.shape[0]
    if c.shape != (k, k) or len(class_names) != k:
        raise ValueError(f"confusion matrix {c.shape} does not match {len(class_names)} classes")
    tp = np.diag(c).astype(np.float64)
    support = c.sum(axis=1)
    predicted = c.sum(axis=0)
    present = support > 0
    denom = 2 * tp + (predicted - tp) + (support - tp)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    n = int(c.sum())
    per_class = {
        class_names[i]: {
            "f1": float(f1[i]) if present[i] else None,
            "precision": float(precision[i]) if predicted[i] else None,
            "recall": float(recall[i]) if present[i] else None,
            "support": int(support[i]),
        }
        for i in range(k)
    }
    return {
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else float("nan"),
        "n": n,
        "present": [class_names[i] for i in range(k) if present[i]],
        "absent": [class_names[i] for i in range(k) if not present[i]],
        "predicted_absent": int(predicted[~present].sum()),
        "per_class": per_class,
        "confusion": c.tolist(),
    }


def classification_scores(
    y_true: ArrayLike, y_pred: ArrayLike, class_names: Sequence[str] = CLASSES
) -> dict[str, Any]:
    """:func:`scores_from_confusion` of the labels' confusion matrix."""
    return scores_from_confusion(confusion_counts(y_true, y_pred, len(class_names)), class_names)


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int = len(CLASSES)) -> float:
    """Macro-F1 over the classes present in ``y_true`` (absent classes are not averaged)."""
    return float(scores_from_confusion(confusion_counts(y_true, y_pred, n_classes),
                                       [str(i) for i in range(n_classes)])["macro_f1"])  # fmt: skip


def scores_markdown(scores: dict[str, Any], title: str = "Scores") -> str:
    """Markdown: the summary line, per-class F1 / precision / recall / support, and the
    confusion matrix with counts in every cell (absent classes' rows are all 0)."""
    names = list(scores["per_class"])
    s = scores
    absent = ", ".join(s["absent"]) or "none"
    lines = [
        f"## {title}",
        "",
        f"Macro-F1 over the {len(s['present'])} classes present: **{s['macro_f1']:.3f}**; "
        f"accuracy {s['accuracy']:.3f}; balanced accuracy {s['balanced_accuracy']:.3f}; "
        f"n = {s['n']}. Classes absent from the true labels (not averaged): {absent}"
        + (f"; {s['predicted_absent']} prediction(s) fell into them." if s["absent"] else "."),
        "",
        "| class | F1 | precision | recall | support |",
        "|---|---|---|---|---|",
    ]

    def f(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    for name in names:
        r = s["per_class"][name]
        lines.append(f"| {name} | {f(r['f1'])} | {f(r['precision'])} | {f(r['recall'])} "
                     f"| {r['support']} |")  # fmt: skip
    short = [n[:4] for n in names]
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class; counts):", "",
              "| true \\ predicted | " + " | ".join(short) + " |",
              "|---|" + "---|" * len(short)]  # fmt: skip
    for name, row in zip(names, s["confusion"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"

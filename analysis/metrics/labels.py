"""Two label sets compared: Cohen's kappa between annotators, and accuracy with the
confusion matrix against the dataset's labels (scikit-learn).
"""

from __future__ import annotations

from collections.abc import Sequence

from gazelab.analysis.metrics.maps import MetricError


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's κ between two annotators' labels of the same images (scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) != len(b):
        raise MetricError(f"label lists differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise MetricError("no labels to compare")
    if len(set(a) | set(b)) == 1:
        return 1.0  # perfect agreement on a single class; sklearn returns NaN here
    return float(cohen_kappa_score(list(a), list(b)))


def label_agreement(
    truth: Sequence[str], given: Sequence[str], classes: Sequence[str]
) -> dict[str, object]:
    """Accuracy and the confusion matrix (rows: dataset label, columns: given label)."""
    from sklearn.metrics import accuracy_score, confusion_matrix

    if len(truth) != len(given):
        raise MetricError(f"label lists differ in length: {len(truth)} vs {len(given)}")
    return {
        "accuracy": float(accuracy_score(list(truth), list(given))) if truth else float("nan"),
        "confusion": confusion_matrix(list(truth), list(given), labels=list(classes)).tolist(),
        "classes": list(classes),
    }

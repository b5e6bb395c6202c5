"""FER+ vote rules (docs/settings-and-data.md#data): the published "majority" mode drops single votes
as outliers, then needs a strict majority of what remains; "strict" counts every vote."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from gazelab import CLASSES
from gazelab.models.datasets.base import DatasetError
from gazelab.models.datasets.ferplus import VOTE_COLUMNS, VOTE_RULES, load_ferplus, majority_label


def _label(votes: list[int], rule: str = "ferplus") -> str | None:
    lab = majority_label(np.array(votes, dtype=np.int64), rule)
    return None if lab is None else CLASSES[lab]


# The issue's three vectors: dropped by "more than half of all 10", kept by FER+'s rule.
ISSUE_CASES = [
    ([5, 0, 0, 3, 1, 0, 0, 0, 1, 0], "neutral"),  # 5 of 8 after the two singles go
    ([4, 1, 1, 1, 1, 1, 1, 0, 0, 0], "neutral"),  # 4 of 4
    ([0, 0, 0, 0, 0, 0, 5, 1, 3, 1], "fear"),  # 5 of 8 (unknown keeps its 3)
]


@pytest.mark.parametrize(("votes", "label"), ISSUE_CASES)
def test_published_rule_keeps_the_issue_cases(votes: list[int], label: str) -> None:
    assert _label(votes) == label
    assert _label(votes, "ferplus") == label


@pytest.mark.parametrize(("votes", "_"), ISSUE_CASES)
def test_strict_rule_drops_the_issue_cases(votes: list[int], _: str) -> None:
    assert _label(votes, "strict") is None


@pytest.mark.parametrize(
    ("votes", "ferplus", "strict"),
    [
        ([6, 4, 0, 0, 0, 0, 0, 0, 0, 0], "neutral", "neutral"),  # plain majority
        ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None, None),  # tie
        ([4, 4, 1, 1, 0, 0, 0, 0, 0, 0], None, None),  # tie after the singles go
        ([3, 3, 2, 1, 1, 0, 0, 0, 0, 0], None, None),  # 3 of 8: no majority either way
        ([1] * 10, None, None),  # every vote a single: nothing left
        ([0] * 10, None, None),  # no votes
        ([0, 0, 0, 0, 0, 0, 0, 0, 6, 4], None, None),  # unknown majority
        ([0, 0, 0, 0, 0, 0, 0, 0, 4, 6], None, None),  # not-a-face majority
        ([3, 1, 1, 1, 0, 0, 0, 0, 0, 0], "neutral", None),  # 3 of 3 left; 3 of 6 is half
        ([2, 0, 0, 0, 0, 0, 0, 0, 0, 1], "neutral", "neutral"),  # 2 of 2 left; 2 of 3
        ([0, 0, 0, 0, 0, 0, 0, 0, 5, 1], None, None),  # single NF dropped, unknown 5 of 5
        ([0, 0, 0, 0, 0, 0, 0, 2, 2, 1], None, None),  # contempt ties unknown after outliers
        ([1, 0, 0, 0, 0, 0, 0, 9, 0, 0], "contempt", "contempt"),
    ],
)
def test_edge_cases(votes: list[int], ferplus: str | None, strict: str | None) -> None:
    assert _label(votes, "ferplus") == ferplus
    assert _label(votes, "strict") == strict


def test_exactly_half_is_not_a_majority() -> None:
    # 4 of 8 after outlier removal: neither rule keeps it
    assert _label([4, 2, 2, 0, 0, 0, 0, 0, 0, 0]) is None
    assert _label([4, 2, 2, 0, 0, 0, 0, 0, 0, 0], "strict") is None


def test_unknown_rule_is_refused_with_the_choices() -> None:
    assert VOTE_RULES == ("ferplus", "strict")
    with pytest.raises(DatasetError, match=r"vote rule 'plurality'.*'ferplus', 'strict'"):
        majority_label(np.zeros(10, dtype=np.int64), "plurality")


def _write(root, rows) -> None:  # type: ignore[no-untyped-def]
    with open(root / "fer2013.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for _ in rows:
            w.writerow([0, " ".join(["7"] * 2304), "Training"])
    with open(root / "fer2013new.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for i, votes in enumerate(rows):
            w.writerow(["Training", f"fer{i}.png", *votes])


def test_loader_labels_by_the_chosen_rule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path, [v for v, _ in ISSUE_CASES] + [[0, 7, 0, 0, 0, 0, 0, 0, 3, 0]])
    published = load_ferplus(tmp_path)
    assert [CLASSES[i] for i in published.labels] == ["neutral", "neutral", "fear", "happy"]
    assert published.ids == ["train/fer0.png", "train/fer1.png", "train/fer2.png", "train/fer3.png"]
    strict = load_ferplus(tmp_path, vote_rule="strict")
    assert [CLASSES[i] for i in strict.labels] == ["happy"]
    with pytest.raises(DatasetError, match="vote rule 'mean'"):
        load_ferplus(tmp_path, vote_rule="mean")

"""The study-scale options of the command line: `saliency
--dataset --worker I/N` on hosts sharing a folder, and `compare --config` with [quality]
limits that leave trials out."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.models.architectures import build_model

    tf.keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    build_model("small_cnn", (32, 32, 1), len(CLASSES)).save(path)
    return path


def test_saliency_dataset_split_over_two_workers(model_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from gazelab.analysis.dataset_relevance import load_dataset_relevance
    from gazelab.app.cli import main

    out = tmp_path / "rel"
    args = ["saliency", "--model", str(model_file), "--dataset", "synthetic:40:2:32",
            "--out", str(out), "--shard-size", "8", "--analyzer", "gradient"]  # fmt: skip
    assert main([*args, "--worker", "1/2"]) == 0
    assert "worker 1/2: its shards are written" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "shard-00001.npz", "shard-00003.npz"]  # fmt: skip
    assert main([*args, "--worker", "0/2"]) == 0
    assert "40 relevance maps" in capsys.readouterr().out
    assert load_dataset_relevance(out).meta["complete"]
    for bad in ("2/2", "x/2", "1"):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--worker", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--worker" in err


def test_compare_config_quality_limits_leave_trials_out(
    model_file: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from gazelab import CLASSES
    from gazelab.annotation.store import SessionStore
    from gazelab.app.cli import main
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.tests.gaze_project import write_gaze_session

    source = "synthetic:4:7:64"
    src = open_image_set(source)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    fix = {iid: [(10.0, 12.0), (40.0, 20.0), (30.0, 50.0)] for iid in src.ids}
    with SessionStore(tmp_path / "p.sqlite", create=True) as store:
        write_gaze_session(store, "A", source, fix, truth)
    cfg = tmp_path / "q.toml"
    cfg.write_text("[quality]\nmax_accuracy_deg = 1.0\n[analysis]\nanalyzer = 'gradient'\n")
    report = tmp_path / "report"
    base = ["compare", "--store", str(tmp_path / "p.sqlite"), "--model", str(model_file),
            "--report", str(report)]  # fmt: skip
    assert main([*base, "--config", str(cfg)]) == 2  # every trial unvalidated: none left
    err = capsys.readouterr().err
    assert "was left out by the [quality] limits (4 trials; e.g. no validation accuracy" in err
    assert main(base) == 0  # without the limits: kept
    assert not (report / "excluded.csv").exists() or len(
        list(csv.DictReader((report / "excluded.csv").open()))) == 0  # fmt: skip

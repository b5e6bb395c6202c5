"""Outputs are whole or absent: every writing command, SIGKILLed at random points, never
leaves a partial file under a final name.

Each command runs in its own process on a slow disk (``tests/slow_disk.py``: writes in
flushed 1 KiB pieces, 2 ms apart, so a kill lands inside a write). One reference run
measures how long the command writes (first output file to exit); each killed run waits
for its first output file, then a seeded random delay within that span, then SIGKILL.
Every file under the output folder that does not start with ``.`` (temporaries and
markers) must then be whole: PNGs decode, ``.keras`` files are valid zips that load,
CSV/TSV parse with every row as long as the header, JSON and TOML parse, NPZ arrays
and gzip streams read to the end, Markdown ends its last line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.tf, pytest.mark.slow]

SLOW_DISK = Path(__file__).with_name("slow_disk.py")
KILLS = int(os.environ.get("GAZELAB_KILLS", "3"))
SEED = 20261203
SOURCE = "synthetic:4:7:64"


# -- what a whole file is ---------------------------------------------------------------------
def _png(p: Path) -> None:
    from PIL import Image

    with Image.open(p) as im:
        im.load()


def _keras(p: Path) -> None:
    with zipfile.ZipFile(p) as zf:
        assert zf.testzip() is None
    from gazelab.models.architectures import load_classifier

    load_classifier(p)


def _rows(data: bytes, delimiter: str) -> None:
    text = data.decode("utf-8")
    assert text.endswith("\n"), "last line cut"
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    assert rows, "empty"
    assert all(len(r) == len(rows[0]) for r in rows), "a row shorter than the header"


def _table(delimiter: str) -> Callable[[Path], None]:
    return lambda p: _rows(p.read_bytes(), delimiter)


def _tsv_gz(p: Path) -> None:
    _rows(gzip.decompress(p.read_bytes()), "\t")


def _npz(p: Path) -> None:
    with np.load(p) as z:
        for k in z.files:
            z[k]


def _text(p: Path) -> None:
    text = p.read_bytes().decode("utf-8")
    assert text.endswith("\n"), "last line cut"


CHECKS: dict[str, Callable[[Path], None]] = {
    ".png": _png,
    ".keras": _keras,
    ".csv": _table(","),
    ".tsv": _table("\t"),
    ".json": lambda p: json.loads(p.read_bytes()),
    ".toml": lambda p: tomllib.loads(p.read_bytes().decode("utf-8")),
    ".npz": _npz,
    ".npy": lambda p: np.load(p),
    ".gz": _tsv_gz,
    ".md": _text,
}
UNCHECKED = {"checkpoint", ".index", ".data-00000-of-00001", ".sqlite", ".sqlite-wal",
             ".sqlite-shm", ".tmp"}  # fmt: skip
"""TensorFlow's checkpoint files and SQLite (written by their own C code, each with its own
journal or rename); names starting with ``.`` are temporaries and markers."""


def final_files(root: Path) -> list[Path]:
    hidden = lambda p: any(part.startswith(".") for part in p.relative_to(root).parts)  # noqa: E731
    return sorted(p for p in root.rglob("*") if p.is_file() and not hidden(p))


def partial_files(root: Path) -> list[str]:
    """``NAME: why`` for every final-named file under ``root`` that is not whole."""
    bad = []
    for p in final_files(root):
        suffix = ".gz" if p.name.endswith(".tsv.gz") else p.suffix
        check = CHECKS.get(suffix)
        if check is None:
            assert p.name in UNCHECKED or p.suffix in UNCHECKED or "ckpt-" in p.name, p
            continue
        try:
            check(p)
        except Exception as exc:
            bad.append(
                f"{p.relative_to(root)} ({p.stat().st_size} B): {type(exc).__name__} {exc}"[:200]
            )
    return bad


# -- the commands -------------------------------------------------------------------------------
@dataclass
class Command:
    name: str
    argv: Callable[[Path], list[str]]  # the output folder -> argv
    out: Callable[[Path], Path] = lambda out: out  # where it writes, given the output folder
    tried: int = 0
    held: int = 0
    failed: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project (3 sessions on 4 images, an untrained small model) and a tiny run config."""
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.annotation.store import SessionStore
    from gazelab.models.architectures import build_model
    from gazelab.models.datasets.registry import open_image_set
    from gazelab.tests.gaze_project import write_gaze_session

    root = tmp_path_factory.mktemp("inputs")
    src = open_image_set(SOURCE)
    truth = {iid: CLASSES[src.labels[iid]] for iid in src.ids}
    fix = {iid: [(10.0, 12.0), (40.0, 20.0), (30.0, 50.0)] for iid in src.ids}
    with SessionStore(root / "project.sqlite", create=True) as store:
        for who in ("A", "B", "C"):
            write_gaze_session(store, who, SOURCE, fix, truth)
    tf.keras.utils.set_random_seed(0)
    build_model("small_cnn", (32, 32, 1), len(CLASSES)).save(root / "model.keras")
    (root / "run.toml").write_text(
        '[data]\nimages = "synthetic:40:5:64"\n[training]\narchitecture = "small_cnn"\n'
        "input_size = 32\nepochs = 2\nbatch_size = 8\n"
    )
    return root


def commands(inputs: Path) -> list[Command]:
    store, model = str(inputs / "project.sqlite"), str(inputs / "model.keras")
    project = ["--store", store, "--model", model, "--analyzer", "gradient"]
    return [
        Command(
            "compare",
            lambda o: [
                "compare",
                *project,
                "--cache",
                str(o / "cache"),
                "--report",
                str(o / "report"),
            ],
        ),  # fmt: skip
        Command(
            "masks",
            lambda o: [
                "masks",
                "--algorithm",
                "human",
                *project,
                "--cache",
                str(o / "cache"),
                "--out",
                str(o / "masks"),
            ],
        ),  # fmt: skip
        Command(
            "heatmaps", lambda o: ["heatmaps", "--store", store, "--session", "1", "--out", str(o)]
        ),  # fmt: skip
        Command("export", lambda o: ["export", "--store", store, "--out", str(o)]),
        Command(
            "saliency",
            lambda o: [
                "saliency",
                "--model",
                model,
                "--images",
                SOURCE,
                "--analyzer",
                "gradient",
                "--png",
                "--out",
                str(o),
            ],
        ),  # fmt: skip
        Command(
            "train",
            lambda o: ["train", "trainer", "--config", str(inputs / "run.toml"), "--out", str(o)],
        ),  # fmt: skip
        Command("synthetic", lambda o: ["synthetic", "-n", "12", "--size", "96", "--out", str(o)]),
    ] + ([Command("demo", lambda o: ["demo", "--quick", "--images", "2", "--out", str(o)])]
         if os.environ.get("GAZELAB_KILL_DEMO") else [])  # fmt: skip


def start(cmd: Command, out: Path, root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [sys.executable, str(SLOW_DISK), str(root), "--", *cmd.argv(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def first_output(out: Path, proc: subprocess.Popen[bytes], limit_s: float = 300) -> float | None:
    """Wait until a file (any name) appears under ``out``; ``None`` if the process ended first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if out.exists() and any(p.is_file() for p in out.rglob("*")):
            return time.monotonic()
        if proc.poll() is not None:
            return None
        time.sleep(0.005)
    raise AssertionError(f"no output under {out} in {limit_s} s")


def test_killed_commands_leave_no_partial_file(inputs: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    table = []
    only = os.environ.get("GAZELAB_KILL_COMMANDS")  # e.g. "train,compare"
    cmds = [c for c in commands(inputs) if not only or c.name in only.split(",")]
    for cmd in cmds:
        ref = tmp_path / cmd.name / "reference"
        proc = start(cmd, ref, tmp_path)
        t_first = first_output(ref, proc)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{cmd.name}: {err.decode()[-2000:]}"
        span = time.monotonic() - (t_first or time.monotonic())
        assert partial_files(ref) == [], f"{cmd.name}: the whole run's outputs fail the check"
        n_ref = len(final_files(ref))
        for k in range(KILLS):
            out = tmp_path / cmd.name / f"kill{k}"
            delay = float(rng.uniform(0.0, span))
            proc = start(cmd, out, tmp_path)
            if first_output(out, proc) is not None:
                time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            cmd.tried += 1
            bad = partial_files(out)
            if bad:
                cmd.failed += [f"kill {k} at +{delay:.2f} s: {b}" for b in bad]
            else:
                cmd.held += 1
            shutil.rmtree(out, ignore_errors=True)
        table.append(f"| {cmd.name} | {n_ref} | {span:.1f} | {cmd.tried} | {cmd.held} | "
                     f"{cmd.tried - cmd.held} |")  # fmt: skip
        shutil.rmtree(ref, ignore_errors=True)
    print("\n| command | files | write span s | kills | held | failed |\n|---|---|---|---|---|---|")
    print("\n".join(table))
    failed = [f"{c.name}: {f}" for c in cmds for f in c.failed]
    assert not failed, "\n".join(failed)


def test_train_killed_while_writing_its_records_resumes_instead_of_retraining(
    inputs: Path, tmp_path: Path
) -> None:
    """SIGKILL as ``steps.csv`` is being written (the last epoch is done): the rerun resumes
    from the backup (it was removed before the records were written, so every epoch was
    trained again) and its ``steps.csv`` holds every step."""
    cmd = commands(inputs)[5]
    assert cmd.name == "train"
    out = tmp_path / "run"
    proc = start(cmd, out, tmp_path)
    t0 = time.monotonic()
    while not list(out.glob("*steps.csv*")):
        assert proc.poll() is None, "train ended before writing steps.csv"
        assert time.monotonic() - t0 < 300
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial_files(out) == []
    again = subprocess.run(
        [sys.executable, "-m", "gazelab.app.cli", *cmd.argv(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed from the backup after epoch 2" in again.stdout, again.stdout
    assert "epoch 1/2" not in again.stdout  # nothing trained again
    rows = list(csv.DictReader((out / "steps.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    assert {int(r["epoch"]) for r in rows} == {1, 2}
    assert not (out / "backup").exists()  # removed once the records are whole

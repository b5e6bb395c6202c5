"""Training beyond one process: tf.distribute's MultiWorkerMirroredStrategy
with two real worker processes on 127.0.0.1, and the per-epoch backup that lets a run
resume after a crash (BackupAndRestore for the custom loop)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("distributed_worker.py")
LOSS_TOLERANCE = 1e-4
"""Two workers vs one process: the same global batch, the loss summed over replicas in
another order, so equal up to float32 reduction order (relative)."""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env(tf_config: dict | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", PYTHONPATH=str(WORKER.parents[1])
    )
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _result(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"no result line in:\n{stdout[-2000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def _launch(
    out: Path, epochs: int, crash_at: dict[int, int] | None = None
) -> list[subprocess.Popen]:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        args = [sys.executable, str(WORKER), str(out), str(epochs), "multi_worker_mirrored"]
        if crash_at and i in crash_at:
            args.append(str(crash_at[i]))
        cfg = {"cluster": cluster, "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(args, env=_env(cfg), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))  # fmt: skip
    return procs


def _finish(procs: list[subprocess.Popen], timeout_s: float = 240) -> list[str]:
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=timeout_s)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    return outs


@pytest.mark.slow
def test_a_crashed_run_resumes_from_its_backup_without_losing_or_repeating_an_epoch(
    tmp_path: Path,
) -> None:
    """One process dies when epoch 3 has ended, before its backup: started again, it
    resumes after epoch 2 and ends with the same per-step losses as a run never stopped."""
    whole = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "whole"), "4", "default"],
                           env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert whole.returncode == 0, whole.stdout[-2000:] + whole.stderr[-2000:]
    ref = _result(whole.stdout)
    out = tmp_path / "crashed"
    crashed = subprocess.run([sys.executable, str(WORKER), str(out), "4", "default", "3"],
                             env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert crashed.returncode == 17
    assert (out / "backup" / "history.json").exists() and not (out / "run.json").exists()
    resumed = subprocess.run([sys.executable, str(WORKER), str(out), "4", "default"],
                             env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "resumed from the backup after epoch 2" in resumed.stdout
    got = _result(resumed.stdout)
    assert got["epochs"] == [1, 2, 3, 4]
    np.testing.assert_allclose(got["losses"], ref["losses"], rtol=1e-6)
    assert not (out / "backup").exists()  # removed when the run ended normally
    epochs_csv = (out / "epochs.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in epochs_csv[1:]] == ["1", "2", "3", "4"]


def test_a_backup_of_other_settings_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    crashed = subprocess.run([sys.executable, str(WORKER), str(out), "4", "default", "2"],
                             env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert crashed.returncode == 17
    other = subprocess.run([sys.executable, str(WORKER), str(out), "5", "default"],
                           env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert other.returncode != 0 and "is the backup of another run" in other.stdout + other.stderr


@pytest.mark.slow
def test_two_workers_train_like_one_process_and_resume_after_a_worker_is_killed(
    tmp_path: Path,
) -> None:
    """Two worker processes (TF_CONFIG on 127.0.0.1) with the global batch of one process:
    the same per-step losses; only the chief writes; a worker killed mid-run → both
    started again → the run resumes from the last backup, no epoch lost or repeated."""
    one = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one"), "4", "default"],
                         env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-2000:]
    ref = _result(one.stdout)

    two = tmp_path / "two"
    outs = _finish(_launch(two, 4))
    results = [_result(o) for o in outs]
    for r in results:
        assert r["replicas"] == 2 and r["epochs"] == [1, 2, 3, 4]
        np.testing.assert_allclose(r["losses"], ref["losses"], rtol=LOSS_TOLERANCE)
    written = sorted(p.name for p in two.iterdir())
    assert written == [
        "best.keras",
        "confusion.png",
        "epochs.csv",
        "learning_curve.png",
        "report.md",
        "run.json",
        "steps.csv",
    ]  # fmt: skip  (the chief's files, nothing else)

    # worker 1 dies when epoch 3 has ended; worker 0 then waits in a collective: stop it
    crashed = tmp_path / "crashed"
    procs = _launch(crashed, 4, crash_at={1: 3})
    assert procs[1].wait(timeout=240) == 17
    time.sleep(2.0)
    procs[0].kill()
    procs[0].wait(timeout=30)
    history = json.loads((crashed / "backup" / "history.json").read_text())
    assert max(e["epoch"] for e in history["epochs"]) >= 2
    outs = _finish(_launch(crashed, 4))
    for o in outs:
        assert "resumed from the backup after epoch" in o
        r = _result(o)
        assert r["epochs"] == [1, 2, 3, 4]
        np.testing.assert_allclose(r["losses"], ref["losses"], rtol=LOSS_TOLERANCE)
    assert not (crashed / "backup").exists() and (crashed / "run.json").exists()

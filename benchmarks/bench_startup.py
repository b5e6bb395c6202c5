"""Start-up: CPU time of ``gazelab --help`` and of every ``gazelab CMD --help``.

Each run is a fresh process (the installed ``gazelab`` script); its CPU time (user +
system, from ``resource.getrusage(RUSAGE_CHILDREN)``) is what the goal counts, since wall
time on a shared machine measures the neighbours too. Beside it, in the same run: the
baseline ``python -c "import argparse"`` (an interpreter that starts and does nothing
else), the ratio to it, and for each command the cold run (an empty help cache: the
parser is built, every registry imports its plug-ins, the text is stored) and the warm
runs (the text read back, :mod:`gazelab.app.help_cache`). Goal: every ``--help``
<= 0.15 s of CPU (warm).

    python benchmarks/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 0.15


def cpu_run(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(CPU seconds of the child, wall seconds, exit status) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
    return cpu, wall, done.returncode


def gazelab_command() -> list[str]:
    """The installed ``gazelab`` script beside this Python, else ``python -m``."""
    script = Path(sys.executable).with_name("gazelab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gazelab.app.cli"]


def subcommands() -> list[str]:
    from gazelab.app.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)  # type: ignore[arg-type]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="warm runs per command (median)")
    args = ap.parse_args()

    gazelab = gazelab_command()
    env = dict(os.environ)
    cache = tempfile.TemporaryDirectory(prefix="bench-startup-")
    env["XDG_CACHE_HOME"] = cache.name  # an empty cache: the first run of each is cold

    base = [cpu_run([sys.executable, "-c", "import argparse"], env)[0] for _ in range(args.repeat)]
    baseline = statistics.median(base)
    print(f"baseline: python -c 'import argparse': {baseline:.3f} s CPU (median of {args.repeat})")
    print()
    print(f"{'command':<32} {'cold s':>7} {'warm s':>7} {'warm/base':>9} {'wall s':>7}")
    worst = 0.0
    failed: list[str] = []
    for words in [[], *([c] for c in subcommands())]:
        command = [*gazelab, *words, "--help"]
        cold, _, code = cpu_run(command, env)
        runs = [cpu_run(command, env) for _ in range(args.repeat)]
        warm = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        if code or any(r[2] for r in runs):
            failed.append(" ".join(words) or "(none)")
        worst = max(worst, warm)
        name = " ".join(["gazelab", *words, "--help"])
        print(f"{name:<32} {cold:7.3f} {warm:7.3f} {warm / baseline:8.1f}x {wall:7.3f}")
    cache.cleanup()
    print()
    verdict = "met" if worst <= GOAL_S and not failed else "NOT met"
    print(f"goal: every --help <= {GOAL_S:.2f} s CPU (warm): slowest {worst:.3f} s, "
          f"{worst / baseline:.1f}x the bare interpreter -> {verdict}")  # fmt: skip
    if failed:
        print(f"commands whose --help failed: {', '.join(failed)}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())

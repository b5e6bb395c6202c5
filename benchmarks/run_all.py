"""Run the benchmarks and write their printed lines to ``benchmarks/results.md``.

Numbers typed by hand go stale; this file is generated. Each benchmark runs as its own
process (``python benchmarks/bench_X.py [args]``); its standard output is kept verbatim
under a heading with the command, the date and how long it took, below a header naming
the machine (CPU, cores, memory, GPU if TensorFlow sees one, Python / NumPy / TensorFlow
versions) and the commit. Running a subset replaces only those benchmarks' sections, so
the file always holds the latest run of every benchmark, each with its own date.

    python benchmarks/run_all.py                   # every bench_*.py (``make bench``)
    python benchmarks/run_all.py esr mask_leak     # the benchmarks whose names contain these
    python benchmarks/run_all.py --quick           # smaller sizes where a benchmark has them
    python benchmarks/run_all.py --list
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"

QUICK_ARGS: dict[str, list[str]] = {
    "bench_annotation": ["--trials", "20", "--ingest-s", "5"],
    "bench_compare": ["--n", "8", "--annotators", "2"],
    "bench_esr": ["--n", "640", "--epochs", "2", "--size", "24"],
    "bench_fixations": ["--minutes", "2", "--idt-minutes", "0.5"],
    "bench_mask_leak": ["--n", "800", "--trainer-epochs", "3"],
    "bench_pruning": ["--n", "1000", "--epochs", "4"],
    "bench_saliency": ["--n", "64"],
    "bench_startup": ["--repeat", "3"],
    "bench_voice": ["--every", "3"],
    "bench_trainee": "--seeds 3 --n 800 --epochs 4 --masked 1 --trainer-epochs 3".split(),
    # real faces from GAZELAB_FACE_DATA (fer2013/, CK+48/); skips without them
    "bench_trainee_real": "--seeds 3 --trainer-n 3000 --trainer-epochs 4 --epochs 6 --masked 2".split(),
    "bench_transfer": ["--n", "1500", "--epochs", "6", "--fine-tune-epochs", "3"],
    "bench_viewer": ["--images", "200"],
}
"""Smaller sizes for ``--quick`` (a first look; the defaults are what results.md quotes)."""

HEADER = "# Benchmark results"
SECTION = re.compile(r"^## (bench_[A-Za-z0-9_]+)\.py$", re.M)


@dataclass(frozen=True)
class Outcome:
    name: str
    command: str
    seconds: float
    returncode: int
    stdout: str
    stderr_tail: str
    when: str


def benchmarks(filters: list[str]) -> list[Path]:
    """``bench_*.py`` in this folder, sorted, those whose names contain any filter."""
    found = sorted(HERE.glob("bench_*.py"))
    if not filters:
        return found
    return [p for p in found if any(f in p.stem for f in filters)]


def summary_line(path: Path) -> str:
    """First line of a benchmark's module docstring (read, not imported)."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (OSError, SyntaxError):
        return ""
    return (doc or "").strip().splitlines()[0] if doc else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _version(*packages: str) -> str:
    """Version of the first of ``packages`` installed (TensorFlow ships under several)."""
    for package in packages:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def _gpus() -> str:
    """GPUs TensorFlow would use, asked in a child process (TF is slow to import)."""
    code = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow as tf; "
            "print(len(tf.config.list_physical_devices('GPU')))")  # fmt: skip
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
        n = int(r.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return "unknown"
    return "none (CPU only)" if n == 0 else f"{n} visible to TensorFlow"


def _commit() -> str:
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                           capture_output=True, timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=HERE, text=True, capture_output=True, timeout=10)  # fmt: skip
    except (subprocess.SubprocessError, OSError):
        return "unknown"
    head = r.stdout.strip() or "unknown"
    return head + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def machine_lines() -> list[str]:
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; memory {_memory_gib()}",
        f"- GPU: {_gpus()}",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"NumPy {_version('numpy')}, "
        f"TensorFlow {_version('tensorflow', 'tensorflow-cpu', 'tensorflow-intel')}",
        f"- commit {_commit()}",
    ]


def run_one(path: Path, args: list[str], timeout: float) -> Outcome:
    command = " ".join(["python", f"benchmarks/{path.name}", *args])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, str(path), *args], cwd=HERE.parent, env=env,
                           capture_output=True, text=True, timeout=timeout)  # fmt: skip
        code, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as exc:
        code = -1
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = f"stopped after {timeout:.0f} s (--timeout)"
    tail = "\n".join(err.strip().splitlines()[-15:]) if code != 0 else ""
    return Outcome(path.stem, command, time.monotonic() - t0, code, out, tail, when)


def section(o: Outcome, about: str) -> str:
    status = "ok" if o.returncode == 0 else f"FAILED (exit {o.returncode})"
    lines = [f"## {o.name}.py", ""]
    if about:
        lines += [about, ""]
    lines += [f"`{o.command}` — {o.when}, {o.seconds:.0f} s, {status}", "", "```text"]
    lines += [o.stdout.rstrip("\n") or "(no output)", "```"]
    if o.stderr_tail:
        lines += ["", "Last lines of its error output:", "", "```text", o.stderr_tail, "```"]
    return "\n".join(lines) + "\n"


def read_sections(path: Path) -> dict[str, str]:
    """The ``## bench_X.py`` sections of an existing results file, by benchmark name."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    marks = list(SECTION.finditer(text))
    out = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[m.group(1)] = text[m.start() : end].rstrip("\n") + "\n"
    return out


def write_results(path: Path, sections: dict[str, str], machine: list[str]) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        HEADER,
        "",
        "Generated by `make bench` (`python benchmarks/run_all.py`); do not edit by hand. "
        "Each section is one benchmark's printed output, with the command, its date and its "
        "duration.",
        "",
        f"Last written {now} on:",
        "",
        *machine,
        "",
    ]
    body = [sections[k] for k in sorted(sections)]
    path.write_text("\n".join(head) + "\n" + "\n".join(body), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="run only benchmarks whose names contain these")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (QUICK_ARGS)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per benchmark")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    todo = benchmarks(args.names)
    if args.list or not todo:
        for p in todo:
            print(f"{p.stem:<32} {summary_line(p)}")
        if not todo:
            print(f"no benchmark matches {args.names}", file=sys.stderr)
            return 2
        return 0
    machine = machine_lines()
    sections = read_sections(args.out)
    failed = []
    for p in todo:
        extra = QUICK_ARGS.get(p.stem, []) if args.quick else []
        print(f"== {p.name} {' '.join(extra)}".rstrip(), flush=True)
        o = run_one(p, extra, args.timeout)
        print(o.stdout, end="", flush=True)
        print(f"   {o.seconds:.0f} s, exit {o.returncode}", flush=True)
        if o.returncode != 0:
            failed.append(p.name)
            print(o.stderr_tail, file=sys.stderr)
        sections[p.stem] = section(o, summary_line(p))
        write_results(args.out, sections, machine)  # after each: a stopped run keeps its part
    print(f"wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

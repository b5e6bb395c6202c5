"""Relevance at the paper's scale: MobileNetV2 and InceptionV3.

For each (architecture, input size) this prints, measured in the same run on the
same batches:

- a plain forward pass and a plain gradient of the explained logit (``tf.function``),
  in images/s: the baselines;
- for each analyzer (deep Taylor, LRP-ε, gradient), the construction time (explainer
  built + first batch traced and run) and the steady-state images/s, with the ratio to
  the plain gradient pass;
- iNNvestigate's deep Taylor construction for comparison, stopped after
  ``--innvestigate-timeout`` seconds (0 skips it).

The code path is the product's (``gazelab.analysis.saliency.relevance``); it runs
unchanged on a GPU when TensorFlow sees one.

    python benchmarks/bench_lrp_scale.py [--batch 8] [--batches 3] [--innvestigate-timeout 120]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = (("mobilenet_v2", 96), ("inception_v3", 139), ("inception_v3", 299))
ANALYZERS = ("deep_taylor", "lrp_epsilon", "gradient")


def _rate(fn, x, batches: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for _ in range(batches):
        fn(x)
    return batches * len(x) / (time.perf_counter() - t)


def innvestigate_build(arch: str, size: int, timeout: float) -> str:
    """Seconds iNNvestigate's deep Taylor needs to build and explain one batch, or
    '> timeout' (run in its own process group, killed at the timeout)."""
    code = (
        "import time, numpy as np, tensorflow as tf\n"
        "from gazelab.models.architectures import build_model\n"
        "from gazelab.analysis.saliency import relevance\n"
        "if __name__ == '__main__':\n"
        f"    m = build_model({arch!r}, ({size}, {size}, 3), 8)\n"
        f"    x = np.zeros((2, {size}, {size}, 3), 'float32')\n"
        "    t = time.perf_counter(); relevance(m, x, 'deep_taylor_innvestigate')\n"
        "    print('SECONDS', time.perf_counter() - t)\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    proc = subprocess.Popen(
        [sys.executable, f.name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
        found = [ln for ln in out.splitlines() if ln.startswith("SECONDS")]
        return f"{float(found[0].split()[1]):.1f} s" if found else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"> {timeout:.0f} s (stopped)"
    finally:
        Path(f.name).unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches", type=int, default=3, help="timed batches per measurement")
    ap.add_argument("--innvestigate-timeout", type=float, default=120.0)
    ap.add_argument("--only", help="one architecture, e.g. mobilenet_v2")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    import tensorflow as tf

    from gazelab.analysis.lrp import _EXPLAINERS
    from gazelab.analysis.saliency import relevance
    from gazelab.models.architectures import build_model

    gpus = tf.config.list_physical_devices("GPU")
    print(f"device: {'GPU ' + gpus[0].name if gpus else 'CPU'}, {os.cpu_count()} cores; "
          f"batch {args.batch}, {args.batches} timed batches")  # fmt: skip
    results = []
    for arch, size in CASES:
        if args.only and arch != args.only:
            continue
        tf.keras.utils.set_random_seed(0)
        model = build_model(arch, (size, size, 3), 8)
        x = tf.constant(
            np.random.default_rng(0).uniform(0, 1, (args.batch, size, size, 3)).astype("f4")
        )
        forward = tf.function(lambda v: model(v, training=False))  # noqa: B023

        @tf.function
        def gradient(v):  # type: ignore[no-untyped-def]
            with tf.GradientTape() as tape:
                tape.watch(v)
                score = tf.reduce_max(model(v, training=False), axis=-1)  # noqa: B023
            return tape.gradient(score, v)

        forward(x), gradient(x)  # traced outside the timing
        fwd = _rate(forward, x, args.batches)
        grad = _rate(gradient, x, args.batches)
        row = {"architecture": arch, "size": size, "forward_img_s": fwd, "gradient_img_s": grad}
        print(f"\n{arch} {size}×{size} ({model.count_params() / 1e6:.1f} M parameters): "
              f"forward {fwd:.1f} img/s, plain gradient {grad:.1f} img/s")  # fmt: skip
        xn = x.numpy()
        for name in ANALYZERS:
            _EXPLAINERS.clear()
            t = time.perf_counter()
            relevance(model, xn, name, batch_size=args.batch)
            build = time.perf_counter() - t
            rate = _rate(lambda v: relevance(model, v, name, batch_size=args.batch),  # noqa: B023
                         xn, args.batches)  # fmt: skip
            row[f"{name}_build_s"] = build
            row[f"{name}_img_s"] = rate
            row[f"{name}_ratio"] = rate / grad
            print(f"  {name:<12} construction {build:6.1f} s   {rate:7.1f} img/s   "
                  f"{rate / grad:5.2f}× the plain gradient")  # fmt: skip
        if args.innvestigate_timeout > 0 and size < 299:
            took = innvestigate_build(arch, size, args.innvestigate_timeout)
            row["innvestigate_deep_taylor_build"] = took
            print(f"  iNNvestigate deep Taylor, construction + one batch: {took}")
        results.append(row)
    ok = all(r["deep_taylor_build_s"] < 60 and r["deep_taylor_ratio"] >= 0.3 for r in results)
    print(f"\ntargets (construction < 60 s, deep Taylor >= 0.3× gradient): "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

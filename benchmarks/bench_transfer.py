"""Memory integrity across datasets (Tannugi et al. 2019) on synthetic faces.

Source: synthetic faces drawn by renderer ``a`` from a pool of 60 identities; target:
renderer ``b`` (other identity ranges, darker, softer, lower contrast) with 30 other
identities and a third of the images. The simplified VGG (width-scaled for a CPU) is
trained on the source (BL), then adapted with FC, FC+CL, RE (from BL's weights) and FU
(merged data, from scratch) on 50 % and 100 % of the target's training set. Prints the
table of accuracy on the source test set and the target test set.

    python benchmarks/bench_transfer.py [--n 3000] [--epochs 10] [--width 0.25]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=3000, help="source faces (target: a third)")
    ap.add_argument("--epochs", type=int, default=10, help="BL / FU epochs")
    ap.add_argument("--fine-tune-epochs", type=int, default=5)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--out", help="keep the run here (default: a temporary folder)")
    args = ap.parse_args()
    from gazelab.models.transfer import load_transfer_config, run_transfer

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        cfg = out / "transfer-bench.toml"
        cfg.write_text(f"""[transfer]
source = "synthetic:{args.n}:0:48:subjects=60"
target = "synthetic:{args.n // 3}:1:48:subjects=30:renderer=b"
width = {args.width}
fine_tune_epochs = {args.fine_tune_epochs}
[training]
input_size = 48
epochs = {args.epochs}
batch_size = 32
learning_rate = 0.0005
augment = false
""")
        t = time.perf_counter()
        rows = run_transfer(load_transfer_config(cfg), out / "run")
        print((out / "run" / "table.md").read_text())
        for r in rows:
            print(f"{r['strategy']:6} {r['fraction'] or '':4} trained: {r['trained_layers'] or '-':30}"
                  f" {r['seconds']:6.1f} s")  # fmt: skip
        print(f"total {time.perf_counter() - t:.0f} s (2-core CPU)")
    print("(paper, FER → TFEID: BL 68.35 / 31.03; FC 100 % 47.12 / 82.76; FU 100 % 68.77 / 86.21)")


if __name__ == "__main__":
    main()

"""A hostile LSL gaze outlet in its own process, for the LSL hardening tests.

Run as ``python tests/lsl_outlet_proc.py MODE NAME``; it prints ``ready`` once the
outlet is on the network, waits for an inlet, streams for ``--seconds`` and exits.

Modes (every stream has ScreenX/ScreenY channels in pixels, with metadata):

``strings``  a string-typed stream of numbers as text; sample 100 holds ``"abc"``.
``future``   a double stream at 200 Hz; sample 100 is stamped 1e6 s (11.6 days) ahead.
``fast``     a stream that declares 1 MHz but sends 200 samples a second.
"""

from __future__ import annotations

import argparse
import sys
import time

from gazelab.gaze.trackers.lsl import import_pylsl

BAD_INDEX = 100
RATE_HZ = 200.0


def _info(pylsl, name: str, fmt: int, rate_hz: float):  # type: ignore[no-untyped-def]
    info = pylsl.StreamInfo(name, "Gaze", 2, rate_hz, fmt, name)
    chans = info.desc().append_child("channels")
    for label in ("ScreenX", "ScreenY"):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("type", label)
        ch.append_child_value("unit", "pixels")
        ch.append_child_value("eye", "both")
    return info


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("strings", "future", "fast"))
    ap.add_argument("name")
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    pylsl = import_pylsl()
    fmt = pylsl.cf_string if args.mode == "strings" else pylsl.cf_double64
    declared = 1e6 if args.mode == "fast" else RATE_HZ
    outlet = pylsl.StreamOutlet(_info(pylsl, args.name, fmt, declared))
    print("ready", flush=True)
    while not outlet.wait_for_consumers(0.1):
        pass
    time.sleep(0.3)  # the inlet opens its data stream after resolving
    t0 = pylsl.local_clock()
    k = 0
    while (now := pylsl.local_clock()) - t0 < args.seconds:
        due = int((now - t0) * RATE_HZ) + 1
        while k < due:
            x, y = 100.0 + k % 1000, 200.0
            ts = t0 + k / RATE_HZ
            if args.mode == "strings":
                outlet.push_sample(["abc" if k == BAD_INDEX else repr(x), repr(y)], ts)
            else:
                wild = args.mode == "future" and k == BAD_INDEX
                outlet.push_sample([x, y], ts + (1e6 if wild else 0.0))
            k += 1
        time.sleep(0.005)
    print(f"sent {k}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

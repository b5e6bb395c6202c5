"""A long session with spoken answers through a real audio server: memory, threads, streams.

Starts a private PulseAudio server (null sink, its monitor the default source, ALSA
routed to it), then runs ``python -m gazelab.tests.voice_soak``: the annotation window
(offscreen) with the simulated Eye Tribe and the default recogniser listening to the
default microphone for ``--trials`` trials; a label WAV (espeak-ng) is played at trials
1-4 and again every 100 trials (played once more when the window asks for a repeat, as a
participant says it again). Every 50 trials it prints the window process's and the
voice child's resident memory and threads and the capture streams the audio server holds.

Goal: flat — one capture stream all session, threads constant, RSS at the last report
within 10 % of the first; every spoken label heard as at trials 1-4.

    python benchmarks/bench_voice_soak.py [--trials 400]

Needs pulseaudio, pulseaudio-utils, libasound2-plugins and espeak-ng (scripts/bootstrap.sh).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gazelab.annotation.speech import SPOKEN_WORDS
from gazelab.tests.pulse_server import PulseUnavailable, private_pulseaudio

WORDS = ("neutral", "happiness", "surprise", "disgusted")
"""Label words the default recogniser hears clear of its n-best margin (as the test's,
tests/test_microphone.py): "happy" and "disgust" are asked again at random trials."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=400)
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        print("skipped: espeak-ng is not installed (scripts/bootstrap.sh installs it)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        wavs = {}
        for w in WORDS:
            wavs[w] = Path(tmp) / f"{w}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wavs[w]), w], check=True)
        speak: dict[int, str] = {}
        for start in [1, *range(100, args.trials + 1, 100)]:
            first = min(start, args.trials - len(WORDS) + 1)
            speak.update({first + i: w for i, w in enumerate(WORDS)})
        plan = ",".join(f"{t}:{wavs[w]}" for t, w in sorted(speak.items()))
        try:
            with private_pulseaudio(Path(tmp)) as env:
                t0 = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "-m", "gazelab.tests.voice_soak", "--trials",
                     str(args.trials), "--store", str(Path(tmp) / "soak.sqlite"), "--speak",
                     plan, "--report-every", "50"],
                    env={**env, "QT_QPA_PLATFORM": "offscreen"}, capture_output=True,
                    text=True, timeout=3600,
                )  # fmt: skip
                wall = time.monotonic() - t0
        except PulseUnavailable as exc:
            print(f"skipped: {exc}")
            return 0
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows or "heard" not in rows[-1]:
        print(f"FAILED (exit {done.returncode}): {done.stderr[-1500:]}")
        return 1
    summary, reports = rows[-1], rows[:-1]
    print(f"{args.trials} trials in {wall:.0f} s with the {summary.get('recognizer')} recogniser;"
          f" spoken answers at {len(speak)} trials\n")  # fmt: skip
    print("| trial | window RSS MiB | window threads | voice RSS MiB | voice threads | streams |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in reports:
        print(f"| {r['trial']} | {r['rss_mib']:.1f} | {r['threads']} | {r['voice_rss_mib']:.1f}"
              f" | {r['voice_threads']} | {r['streams']} |")  # fmt: skip
    heard = {int(t): lab for t, lab in summary["heard"].items()}
    missed = {t: w for t, w in sorted(speak.items()) if heard.get(t) != SPOKEN_WORDS[w]}
    same = len(speak) - len(missed)
    first, last = reports[0], reports[-1]
    rss_ratio = last["rss_mib"] / first["rss_mib"]
    voice_ratio = last["voice_rss_mib"] / first["voice_rss_mib"]
    flat = (
        rss_ratio <= 1.10
        and voice_ratio <= 1.10
        and len({r["threads"] for r in reports}) == 1
        and len({r["voice_threads"] for r in reports}) == 1
        and summary["max_streams"] == 1
        and all(r["streams"] == 1 for r in reports)
    )
    print()
    print(f"window RSS last/first: x{rss_ratio:.3f}; voice child RSS last/first: x{voice_ratio:.3f}"
          f" (goal <= x1.10)")  # fmt: skip
    print(f"capture streams at most: {summary['max_streams']} (goal 1)")
    print(f"spoken labels heard as at trials 1-4: {same}/{len(speak)} (goal all)")
    for t, w in missed.items():
        print(f"  trial {t}: {w!r} ended as {heard.get(t)!r} (typed by the operator)")
    asked = summary.get("repeats", {})
    times = sum(len(a) for a in asked.values())
    print(f"asked to repeat: {times} times at {len(asked)} of {len(speak)} spoken trials")
    for t, a in sorted(asked.items(), key=lambda kv: int(kv[0])):
        print(f"  trial {t} ({speak[int(t)]!r}): heard {a}")
    print(f"flat: {'yes' if flat and same == len(speak) else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

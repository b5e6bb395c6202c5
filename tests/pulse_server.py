"""A private PulseAudio server for the real microphone path (tests and benchmarks).

Its own socket and HOME under a given folder, so nothing else on the machine sees it;
a null sink is the default sink and its monitor the default source, so what ``paplay``
plays into the sink is what the "microphone" hears; ALSA's default device is routed to
it (``pcm.!default { type pulse }`` in that HOME's ``.asoundrc``), which is the path
sounddevice/PortAudio takes on a lab machine.

Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins
(``scripts/bootstrap.sh`` installs them as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGES = {"pulseaudio": "pulseaudio", "paplay": "pulseaudio-utils", "pactl": "pulseaudio-utils"}


class PulseUnavailable(RuntimeError):
    """The PulseAudio binaries are missing or the server did not start."""


def missing_packages() -> list[str]:
    return sorted({pkg for exe, pkg in PACKAGES.items() if shutil.which(exe) is None})


@contextlib.contextmanager
def private_pulseaudio(folder: Path, *, rate: int = 16000) -> Iterator[dict[str, str]]:
    """Start a private server under ``folder``; yield the environment that reaches it."""
    missing = missing_packages()
    if missing:
        raise PulseUnavailable(f"missing Debian packages {missing}")
    home = Path(folder) / "home"
    run = home / "pulse"
    run.mkdir(parents=True, exist_ok=True)
    (home / ".asoundrc").write_text("pcm.!default { type pulse }\nctl.!default { type pulse }\n")
    sock = run / "native"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "PULSE_RUNTIME_PATH": str(run),
        "PULSE_SERVER": f"unix:{sock}",
    }
    log_path = Path(folder) / "pulseaudio.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes",
         "--use-pid-file=no", "--log-target=stderr",
         "-L", f"module-native-protocol-unix socket={sock} auth-anonymous=1",
         "-L", f"module-null-sink sink_name=gazelab_sink rate={rate} channels=1"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10.0
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise PulseUnavailable(f"PulseAudio did not start: {log_path.read_text()}")
            time.sleep(0.1)
        for cmd in (["set-default-sink", "gazelab_sink"],
                    ["set-default-source", "gazelab_sink.monitor"]):  # fmt: skip
            subprocess.run(["pactl", *cmd], env=env, check=True)
        yield env
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def capture_streams(env: dict[str, str]) -> int:
    """How many recording streams (source outputs) the server holds now."""
    out = subprocess.run(["pactl", "list", "short", "source-outputs"], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return sum(1 for line in out.splitlines() if line.strip())

"""A real X screen for tests: Xvfb at a given size with the openbox window manager, driven
with xdotool, photographed through Qt's xcb platform (the whole root window).

Needs root and apt (``make test`` installs xvfb, openbox, xdotool through
scripts/bootstrap.sh); tests skip otherwise, as the PulseAudio tests do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PACKAGES = {"Xvfb": "xvfb", "openbox": "openbox", "xdotool": "xdotool"}
SHOTS = Path("/tmp/gazelab-shots")  # a copy of every screenshot, to look at


def need_x() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("the real-screen tests need root and apt (scripts/bootstrap.sh installs "
                    "xvfb, openbox and xdotool there); not root or no apt-get here")  # fmt: skip
    missing = sorted({pkg for exe, pkg in PACKAGES.items() if shutil.which(exe) is None})
    if missing:
        pytest.fail(f"missing Debian packages {missing}: run 'make test' (scripts/bootstrap.sh"
                    " installs them as root)")  # fmt: skip


class XScreen:
    """One X display: its environment, xdotool, screenshots and waiting for windows."""

    def __init__(self, display: str, env: dict[str, str], shots: Path, label: str) -> None:
        self.display = display
        self.env = env
        self.shots = shots
        self.label = label

    def xdotool(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                             timeout=30)  # fmt: skip
        if check and out.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout.strip()

    def windows(self, name: str) -> list[str]:
        return self.xdotool("search", "--onlyvisible", "--name", name, check=False).split()

    def wait_window(
        self, name: str, timeout_s: float = 60.0, proc: subprocess.Popen | None = None
    ) -> str:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            found = self.windows(name)
            if found:
                return found[-1]
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the program ended (rc {proc.returncode}) before a window"
                                     f" named {name!r} appeared")  # fmt: skip
            time.sleep(0.2)
        raise AssertionError(f"no window named {name!r} within {timeout_s} s")

    def geometry(self, wid: str) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of a window on the screen."""
        out = self.xdotool("getwindowgeometry", "--shell", wid)
        v = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return int(v["X"]), int(v["Y"]), int(v["WIDTH"]), int(v["HEIGHT"])

    def activate(self, wid: str) -> None:
        self.xdotool("windowactivate", "--sync", wid, check=False)
        self.xdotool("windowfocus", "--sync", wid, check=False)
        time.sleep(0.2)

    def key(self, *keys: str) -> None:
        self.xdotool("key", "--delay", "60", *keys)

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "40", text)

    def shot(self, name: str, folder: Path) -> Path:
        """The whole screen as PNG in ``folder`` (and a copy under /tmp/gazelab-shots)."""
        path = folder / f"{self.label}_{name}.png"
        code = (
            "import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
            "ok = app.primaryScreen().grabWindow(0).save(sys.argv[1])\nsys.exit(0 if ok else 1)"
        )
        env = dict(self.env, QT_QPA_PLATFORM="xcb")
        subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True, timeout=60)
        self.shots.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, self.shots / path.name)
        return path

    def until(self, what: Callable[[], bool], timeout_s: float = 60.0, why: str = "") -> None:
        end = time.monotonic() + timeout_s
        while not what():
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {why or what}")
            time.sleep(0.2)


@contextmanager
def x_screen(width: int, height: int, tmp: Path, label: str) -> Iterator[XScreen]:
    """Xvfb at ``width`` x ``height`` (its default 96 dpi: no measured size) with openbox."""
    need_x()
    procs: list[subprocess.Popen[bytes]] = []
    num = 40 + (os.getpid() % 200)
    while Path(f"/tmp/.X11-unix/X{num}").exists() or Path(f"/tmp/.X{num}-lock").exists():
        num += 1
    display = f":{num}"
    home = tmp / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_RUNTIME_DIR": str(home),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.pop("GAZELAB_SCREENS", None)
    log = (tmp / f"x{num}.log").open("w")
    try:
        procs.append(subprocess.Popen(
            ["Xvfb", display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        end = time.monotonic() + 15
        while not Path(f"/tmp/.X11-unix/X{num}").exists():
            if procs[0].poll() is not None or time.monotonic() > end:
                pytest.fail(f"Xvfb did not start: {(tmp / f'x{num}.log').read_text()}")
            time.sleep(0.1)
        procs.append(subprocess.Popen(["openbox"], env=env, stdout=log, stderr=subprocess.STDOUT))
        time.sleep(0.8)
        yield XScreen(display, env, SHOTS, label)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()

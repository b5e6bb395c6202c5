#!/usr/bin/env bash
# gazelab without make: build the wheel, install it with the `ml` extra (the quick demo trains
# a small model, so it needs TensorFlow) into a new virtual environment, at the versions of
# requirements.lock, and run `gazelab demo --quick` from it, outside the repository.
# `make test` runs this in CI (CI=true) after the tests; docs/install.md says what it shows.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/wheel-check
rm -rf "$work"
mkdir -p "$work"
start=$SECONDS
PIP=(-m pip install -q --disable-pip-version-check)

log=$work/install.log
{
  .venv/bin/python -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$work/dist" .
  .venv/bin/python -m venv "$work/venv"
  "$work/venv/bin/python" "${PIP[@]}" --no-compile -c requirements.lock "$(ls "$work"/dist/gazelab-*.whl)[ml]"
} >"$log" 2>&1 || { tail -40 "$log"; echo "wheel-check: build or install failed ($log)" >&2; exit 1; }
wheel=$(ls "$work"/dist/gazelab-*.whl)
built=$((SECONDS - start))

cd "$work"
# the package must come from the wheel, not from the source tree
venv/bin/python -c 'import gazelab.app, sys; p = gazelab.app.__file__; sys.exit(0 if "site-packages" in p else f"gazelab imported from {p}")'
venv/bin/gazelab --help >/dev/null
venv/bin/gazelab demo --quick --out demo-out >demo.log 2>&1 || { tail -40 demo.log; exit 1; }
test -s demo-out/summary.json
cd - >/dev/null
rm -rf "$work/venv"   # 1.8 GiB; kept only when a step failed, to look into
echo "wheel-check: $(basename "$wheel") built and installed with [ml] in ${built} s;" \
     "gazelab demo --quick from it passed; $((SECONDS - start)) s in all"

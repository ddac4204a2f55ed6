#!/usr/bin/env bash
# Install Maestro and its pinned dependencies into $VENV. Safe to run again.
set -euo pipefail
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}

if ! command -v "$PYTHON" >/dev/null; then
  echo "setup: $PYTHON not found; Maestro needs CPython 3.11" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade "pip==25.3"
# llama-cpp-python compiles llama.cpp from source the first time (~7 min on 2 cores); pip caches the wheel.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
"$VENV/bin/python" -m pip check
echo "setup: done ($("$VENV/bin/python" --version))"

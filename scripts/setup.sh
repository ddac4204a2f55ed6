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
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade "pip==25.3"

# llama-cpp-python ships as an sdist: it compiles llama.cpp (~7 min on 2 cores). Build it portable
# (no -march=native: a native build picked up AMX instructions that this VM's CPU advertises but traps
# on), once per machine, into a wheel cache keyed by the flags; pip's own wheel cache ignores CMAKE_ARGS,
# so it is bypassed for this one package.
LLAMA_VERSION=$(grep -i '^llama[-_]cpp[-_]python==' constraints.txt | cut -d= -f3)
if [ -z "$LLAMA_VERSION" ]; then
  echo "setup: constraints.txt must pin llama_cpp_python==<version> (see 'make lock')" >&2
  exit 1
fi
LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
WHEELS=${MAESTRO_WHEEL_CACHE:-$HOME/.cache/maestro-wheels}/llama-portable-v1
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama_cpp_python') != '$LLAMA_VERSION')" 2>/dev/null \
   || [ ! -f "$VENV/.llama-portable-v1" ]; then
  wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    echo "setup: building llama-cpp-python $LLAMA_VERSION (portable CPU build, ~7 min the first time)" >&2
    mkdir -p "$WHEELS"
    CMAKE_ARGS="$LLAMA_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
      "$PY" -m pip wheel --quiet --no-deps --no-cache-dir -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
    wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -1)
  fi
  "$PY" -m pip install --quiet --no-deps --force-reinstall "$wheel"
  touch "$VENV/.llama-portable-v1"
fi

"$PY" -m pip install --quiet -c constraints.txt -e ".[dev]"
"$PY" -m pip check

# guardrails-ai sends OTLP telemetry and tries remote inferencing unless ~/.guardrailsrc turns both off
# (no environment variable does; see DEPENDENCIES.md). Write it if absent; never overwrite a user's file.
if [ ! -f "$HOME/.guardrailsrc" ]; then
  printf 'enable_metrics=false\nuse_remote_inferencing=false\n' > "$HOME/.guardrailsrc"
  echo "setup: wrote $HOME/.guardrailsrc (guardrails telemetry and remote inferencing off)" >&2
elif ! grep -q '^enable_metrics=false' "$HOME/.guardrailsrc"; then
  echo "setup: WARNING $HOME/.guardrailsrc does not set enable_metrics=false: guardrails may send telemetry" >&2
fi
# The sandbox (maestro/tools/sandbox, docs/sandbox.md) prefers bubblewrap, else falls back to unshare
# mode (root only). Install it when that needs no prompt (root or passwordless sudo, apt-get); quiet
# when it is already there.
install_bwrap() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo -n true 2>/dev/null || return 1; sudo="sudo -n"; fi
  command -v apt-get >/dev/null || return 1
  local install="$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap"
  $install >/dev/null 2>&1 || { $sudo apt-get update -qq >/dev/null 2>&1 && $install >/dev/null 2>&1; }
}
if ! command -v bwrap >/dev/null; then
  if install_bwrap; then
    echo "setup: installed bubblewrap (sandbox mode bwrap)" >&2
  else
    echo "setup: could not install bubblewrap (needs root or passwordless sudo, and apt-get): the sandbox will use unshare mode" >&2
  fi
fi
echo "setup: done ($("$PY" --version))"

#!/usr/bin/env bash
# Make sure the Python 3.11 documentation sources are installed: the corpus of `maestro bench rag`.
# Debian's python3.11-doc puts them at /usr/share/doc/python3.11/html/_sources (library/*.rst.txt).
# Installs the package with apt-get when the directory is missing (through sudo unless run as root).
set -euo pipefail

DOCS=/usr/share/doc/python3.11/html/_sources
PACKAGE=python3.11-doc

fail() {
  echo "python-docs.sh: $*" >&2
  exit 1
}

if compgen -G "$DOCS/library/*.rst.txt" >/dev/null; then
  echo "python-docs.sh: the Python 3.11 docs are installed at $DOCS" >&2
  exit 0
fi

command -v apt-get >/dev/null \
  || fail "$DOCS is missing and apt-get is not available: install Debian's $PACKAGE (or copy its _sources \
directory) by hand, then pass --corpus DIR to \`maestro bench rag\`"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null \
    || fail "$DOCS is missing and installing $PACKAGE needs root: run this script as root or install sudo"
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
echo "python-docs.sh: installing $PACKAGE (the corpus of maestro bench rag)" >&2
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "$PACKAGE"; then
  echo "python-docs.sh: install failed; refreshing the package lists and retrying" >&2
  "${SUDO[@]}" apt-get update \
    || fail "apt-get update failed: check the network and /etc/apt/sources.list, then re-run"
  "${SUDO[@]}" apt-get install -y --no-install-recommends "$PACKAGE" \
    || fail "apt-get could not install $PACKAGE: it ships with Debian 12 (bookworm); on another release \
install the Python 3.11 docs by hand and pass --corpus DIR to \`maestro bench rag\`"
fi

compgen -G "$DOCS/library/*.rst.txt" >/dev/null \
  || fail "$PACKAGE is installed but $DOCS/library/*.rst.txt is missing: check the package's file list \
(dpkg -L $PACKAGE)"
echo "python-docs.sh: the Python 3.11 docs are installed at $DOCS" >&2

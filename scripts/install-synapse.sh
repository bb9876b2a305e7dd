#!/usr/bin/env bash
# Installs Synapse (PyPI `matrix-synapse`, pinned) into a virtualenv for the federation interop
# tests (tests/e2e/federation_synapse.rs). Idempotent: when the venv already imports the pinned
# version it returns at once. Prints the venv's python path on the last line of stdout.
#
# Env: SYNAPSE_VENV   (default <repo>/.cache/synapse-venv; gitignored)
#      SYNAPSE_VERSION (default 1.163.2, the version docs/FEDERATION.md was checked against)
#      PYTHON         (default python3; Synapse 1.163 needs Python >= 3.10)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SYNAPSE_VENV:-$root/.cache/synapse-venv}"
version="${SYNAPSE_VERSION:-1.163.2}"
python="${PYTHON:-python3}"

installed_version() {
  # The distribution's version: synapse.__version__ appends git details of the directory the
  # venv sits in (here: this repository).
  "$venv/bin/python" -c 'import importlib.metadata as m, sys; import synapse
sys.stdout.write(m.version("matrix-synapse"))' 2>/dev/null
}

if [[ -x "$venv/bin/python" ]] && [[ "$(installed_version || true)" == "$version" ]]; then
  echo "$venv/bin/python"
  exit 0
fi

apt_install() {
  echo "== installing $* (for Synapse)" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq "$@" >/dev/null
}
# A fresh Debian/Ubuntu machine may lack python3, and its python3 ships venv separately.
command -v "$python" >/dev/null 2>&1 || apt_install python3 python3-venv
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "install-synapse: $python is older than 3.10; Synapse $version needs 3.10+" >&2
  exit 1
fi

echo "== installing matrix-synapse==$version into $venv" >&2
# A half-made venv (no pip) is removed and made again.
if [[ ! -x "$venv/bin/pip" ]]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check "matrix-synapse==$version" >&2
got="$(installed_version || true)"
if [[ "$got" != "$version" ]]; then
  echo "install-synapse: expected synapse $version in $venv, found '${got:-nothing}'" >&2
  exit 1
fi
echo "$venv/bin/python"

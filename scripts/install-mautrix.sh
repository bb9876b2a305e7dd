#!/usr/bin/env bash
# Installs mautrix-python (PyPI `mautrix`, pinned) into a virtualenv for the appservice
# interop test (tests/e2e/appservice.rs drives tests/appservice/mautrix_as.py, a real mautrix
# AppService). Idempotent: when the venv already has the pinned version it returns at once.
# Prints the venv's python path on the last line of stdout.
#
# Env: MAUTRIX_VENV    (default <repo>/.cache/mautrix-venv; gitignored)
#      MAUTRIX_VERSION (default 0.21.1)
#      PYTHON          (default python3; mautrix 0.21 needs Python >= 3.10)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MAUTRIX_VENV:-$root/.cache/mautrix-venv}"
version="${MAUTRIX_VERSION:-0.21.1}"
python="${PYTHON:-python3}"

installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m, sys; import mautrix.appservice
sys.stdout.write(m.version("mautrix"))' 2>/dev/null
}

if [[ -x "$venv/bin/python" ]] && [[ "$(installed_version || true)" == "$version" ]]; then
  echo "$venv/bin/python"
  exit 0
fi

apt_install() {
  echo "== installing $* (for mautrix)" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq "$@" >/dev/null
}
command -v "$python" >/dev/null 2>&1 || apt_install python3 python3-venv
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv

echo "== installing mautrix==$version into $venv" >&2
if [[ ! -x "$venv/bin/pip" ]]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check "mautrix==$version" >&2
got="$(installed_version || true)"
if [[ "$got" != "$version" ]]; then
  echo "install-mautrix: expected mautrix $version in $venv, found '${got:-nothing}'" >&2
  exit 1
fi
echo "$venv/bin/python"

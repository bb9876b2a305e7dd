#!/usr/bin/env bash
# Runs every test: formatting, the unit tests of the server workspace, then the end-to-end tests
# (tests/, its own workspace) that start the real `handover` binary and drive it with matrix-sdk.
# Works on a fresh machine: it needs cargo (crates come from crates.io) and the `openssl` command
# (the federation test makes its TLS certificates with it), which it installs if missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v openssl >/dev/null 2>&1; then
  echo "== installing openssl (needed by the federation TLS test)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq openssl >/dev/null
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== layer check (no import runs up the layers of docs/ARCHITECTURE.md)"
python3 scripts/check-layers.py

echo "== unit tests (server workspace)"
cargo test --workspace

echo "== bridges (bridges/, own workspace: matrix-sdk stays out of the server's)"
(cd bridges && cargo fmt --all -- --check && cargo test)

echo "== end-to-end tests (tests/ workspace, real binary + matrix-sdk)"
"$root/scripts/test-e2e.sh"

# The Debian package's install test needs root (dpkg); CI runs as root. Why it is in the
# suite (under a minute on a warm cache): docs/OPERATIONS.md, "Install".
if [ "$(id -u)" = 0 ]; then
  echo "== Debian package install test"
  "$root/scripts/test-deb.sh"
else
  echo "== Debian package install test skipped (needs root)"
fi

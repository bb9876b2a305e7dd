#!/usr/bin/env bash
# Runs every test: formatting, the unit tests of the server workspace, then the end-to-end tests
# (tests/, its own workspace) that start the real `handover` binary and drive it with matrix-sdk.
# Works on a fresh machine: it needs cargo (crates come from crates.io) and the `openssl` command
# (the federation test makes its TLS certificates with it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== unit tests (server workspace)"
cargo test --workspace

echo "== end-to-end tests (tests/ workspace, real binary + matrix-sdk)"
exec "$root/scripts/test-e2e.sh"

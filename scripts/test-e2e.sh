#!/usr/bin/env bash
# End-to-end tests: build the handover binary (debug), then run tests/ (its own workspace)
# against it. Extra arguments go to `cargo test`, e.g.:
#   scripts/test-e2e.sh media::            # only the media tests
#   scripts/test-e2e.sh -- --nocapture     # show output
# Env: HANDOVER_BIN (skip the build, test this binary), HANDOVER_E2E_LOG (server log level),
#      HANDOVER_E2E_KEEP=1 (keep temp dirs), HANDOVER_E2E_SHOW_LOGS=1 (print server stderr),
#      HANDOVER_SYNAPSE_PYTHON (python of a venv with Synapse; else scripts/install-synapse.sh
#      installs it into .cache/synapse-venv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The audit tests tamper with the trail through the `sqlite3` command.
if ! command -v sqlite3 >/dev/null 2>&1; then
  echo "== installing sqlite3 (the audit tests tamper with the trail through it)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq sqlite3 >/dev/null
  fi
fi
if [[ -z "${HANDOVER_BIN:-}" ]]; then
  (cd "$root" && cargo build -p handover --bin handover)
  target="${CARGO_TARGET_DIR:-$root/target}"
  [[ "$target" = /* ]] || target="$root/$target"
  export HANDOVER_BIN="$target/debug/handover"
fi
# Synapse (PyPI, pinned) for the federation interop tests; quick when already installed.
if [[ -z "${HANDOVER_SYNAPSE_PYTHON:-}" ]]; then
  HANDOVER_SYNAPSE_PYTHON="$("$root/scripts/install-synapse.sh" | tail -n 1)"
  export HANDOVER_SYNAPSE_PYTHON
fi
# oidc-provider (npm, pinned) for the identity tests (tests/e2e/oauth.rs); quick when installed.
if [[ -z "${HANDOVER_OIDC_NODE_PATH:-}" ]]; then
  HANDOVER_OIDC_NODE_PATH="$("$root/scripts/install-oidc-provider.sh" | tail -n 1)"
  export HANDOVER_OIDC_NODE_PATH
fi
cd "$root/tests"
exec cargo test "$@"

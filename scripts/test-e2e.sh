#!/usr/bin/env bash
# End-to-end tests: build the handover binary (debug), then run tests/ (its own workspace)
# against it. Extra arguments go to `cargo test`, e.g.:
#   scripts/test-e2e.sh media::            # only the media tests
#   scripts/test-e2e.sh -- --nocapture     # show output
# Env: HANDOVER_BIN (skip the build, test this binary), HANDOVER_ALERTS_BIN and
#      HANDOVER_EPR_BIN (same for the alerts and EPR bridges), HANDOVER_E2E_LOG (server log level),
#      HANDOVER_E2E_KEEP=1 (keep temp dirs), HANDOVER_E2E_SHOW_LOGS=1 (print server stderr),
#      HANDOVER_NODE_PATH (node_modules with playwright-core; else scripts/install-browser.sh),
#      HANDOVER_SYNAPSE_PYTHON (python of a venv with Synapse; else scripts/install-synapse.sh
#      installs it into .cache/synapse-venv), HANDOVER_MAUTRIX_PYTHON (python of a venv with
#      mautrix; else scripts/install-mautrix.sh installs it into .cache/mautrix-venv),
#      HANDOVER_FHIR_SERVER (the FHIR server script for the EPR tests; else
#      scripts/install-fhir.sh installs Medplum's FHIR router next to it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Debian tools the tests call: sqlite3 (the audit tests tamper with the trail through it), unzip
# (the subject-access export is unpacked), pdftoppm from poppler-utils (the evidence report's PDF
# is checked for pages). Installed only when missing.
missing=()
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
if (( ${#missing[@]} )); then
  echo "== installing ${missing[*]} (Debian) for the end-to-end tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Headless Chromium + playwright-core for the console's browser test (tests/e2e/console.rs).
if [[ -z "${HANDOVER_NODE_PATH:-}" ]]; then
  HANDOVER_NODE_PATH="$("$root/scripts/install-browser.sh" | tail -n 1)"
  export HANDOVER_NODE_PATH
fi
if [[ -z "${HANDOVER_BIN:-}" ]]; then
  (cd "$root" && cargo build -p handover --bin handover)
  target="${CARGO_TARGET_DIR:-$root/target}"
  [[ "$target" = /* ]] || target="$root/$target"
  export HANDOVER_BIN="$target/debug/handover"
fi
# The bridges (bridges/, their own workspace) for tests/e2e/alerts.rs and tests/e2e/epr.rs.
if [[ -z "${HANDOVER_ALERTS_BIN:-}" ]]; then
  (cd "$root/bridges" && cargo build -p handover-alerts --bin handover-alerts)
  export HANDOVER_ALERTS_BIN="$root/bridges/target/debug/handover-alerts"
fi
if [[ -z "${HANDOVER_EPR_BIN:-}" ]]; then
  (cd "$root/bridges" && cargo build -p handover-epr --bin handover-epr)
  export HANDOVER_EPR_BIN="$root/bridges/target/debug/handover-epr"
fi
# Medplum's FHIR router (npm, pinned) for the EPR bridge and the alerts bridge's FHIR rota;
# quick when already installed.
if [[ -z "${HANDOVER_FHIR_SERVER:-}" ]]; then
  HANDOVER_FHIR_SERVER="$("$root/scripts/install-fhir.sh" | tail -n 1)"
  export HANDOVER_FHIR_SERVER
fi
# Synapse (PyPI, pinned) for the federation interop tests; quick when already installed.
if [[ -z "${HANDOVER_SYNAPSE_PYTHON:-}" ]]; then
  HANDOVER_SYNAPSE_PYTHON="$("$root/scripts/install-synapse.sh" | tail -n 1)"
  export HANDOVER_SYNAPSE_PYTHON
fi
# mautrix-python (PyPI, pinned) for the appservice interop test; quick when already installed.
if [[ -z "${HANDOVER_MAUTRIX_PYTHON:-}" ]]; then
  HANDOVER_MAUTRIX_PYTHON="$("$root/scripts/install-mautrix.sh" | tail -n 1)"
  export HANDOVER_MAUTRIX_PYTHON
fi
# Debian chromium + playwright-core for the admin UI test (tests/e2e/admin_ui.rs, which also
# runs this itself); quick when already installed.
"$root/scripts/install-browser.sh" >/dev/null
# oidc-provider (npm, pinned) for the identity tests (tests/e2e/oauth.rs); quick when installed.
if [[ -z "${HANDOVER_OIDC_NODE_PATH:-}" ]]; then
  HANDOVER_OIDC_NODE_PATH="$("$root/scripts/install-oidc-provider.sh" | tail -n 1)"
  export HANDOVER_OIDC_NODE_PATH
fi
cd "$root/tests"
exec cargo test "$@"

#!/usr/bin/env bash
# Installs the FHIR server the EPR tests run against: Medplum's FHIR router and in-memory
# repository (npm, versions pinned in tests/tools/fhir-server/package-lock.json) into
# tests/tools/fhir-server/node_modules (gitignored). Idempotent: quick when already installed.
# Prints the server script's path on the last line of stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/tools/fhir-server"
if ! command -v node >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
stamp="$dir/node_modules/.installed-lock"
if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
  echo "== installing Medplum's FHIR router (npm) into $dir/node_modules" >&2
  (cd "$dir" && npm ci --silent --no-audit --no-fund >&2)
  cp "$dir/package-lock.json" "$stamp"
fi
echo "$dir/server.mjs"

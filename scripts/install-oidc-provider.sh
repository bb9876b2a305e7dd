#!/usr/bin/env bash
# Installs the npm package `oidc-provider` (a certified OpenID Provider, pinned) for the identity
# tests (tests/e2e/oauth*.rs start tests/tools/oidc-op.mjs with it). Idempotent: returns at once
# when the pinned version is already there. Prints the node_modules path on the last line.
#
# Env: OIDC_PROVIDER_DIR     (default <repo>/.cache/oidc-provider; gitignored)
#      OIDC_PROVIDER_VERSION (default 9.13.3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${OIDC_PROVIDER_DIR:-$root/.cache/oidc-provider}"
version="${OIDC_PROVIDER_VERSION:-9.13.3}"
pkg="$dir/node_modules/oidc-provider/package.json"

if [[ -f "$pkg" ]] && node -e "process.exit(require('$pkg').version === '$version' ? 0 : 1)"; then
  echo "$dir/node_modules"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "== installing nodejs and npm (for oidc-provider)" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$dir"
[[ -f "$dir/package.json" ]] || echo '{"private": true}' > "$dir/package.json"
echo "== installing oidc-provider@$version into $dir" >&2
(cd "$dir" && npm install --no-audit --no-fund --silent "oidc-provider@$version" >&2)
echo "$dir/node_modules"

#!/usr/bin/env bash
# Installs what the browser tests need: Debian's Chromium (apt) and playwright-core (npm, pinned;
# it drives the system Chromium, never downloads a browser of its own). Idempotent and quick when
# already installed. Prints the node_modules directory on the last line of stdout; tests set
# NODE_PATH to it and launch Chromium from /usr/bin/chromium.
#
# Env: BROWSER_DIR (default <repo>/.cache/browser; gitignored)
#      PLAYWRIGHT_CORE_VERSION (default 1.57.0)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${BROWSER_DIR:-$root/.cache/browser}"
version="${PLAYWRIGHT_CORE_VERSION:-1.57.0}"

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (Debian) for the browser tests" >&2
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null 2>&1 || { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq nodejs npm >/dev/null; }

installed() {
  node -e 'process.stdout.write(require(process.argv[1] + "/package.json").version)' \
    "$dir/node_modules/playwright-core" 2>/dev/null
}
if [[ "$(installed || true)" != "$version" ]]; then
  echo "== installing playwright-core@$version into $dir" >&2
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
  (cd "$dir" && npm install --silent --no-audit --no-fund "playwright-core@$version" >&2)
fi
echo "$dir/node_modules"

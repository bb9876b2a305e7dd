#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed once into .cache/cargo-deb, pinned,
# `cargo install --locked`). Prints the .deb's path on the last line.
#   scripts/build-deb.sh                 # release build: what ships
#   HANDOVER_DEB_PROFILE=dev scripts/build-deb.sh   # the debug build (the install test in CI)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache/cargo-deb"
version="3.8.0"
if [[ ! -x "$cache/bin/cargo-deb" ]] || ! "$cache/bin/cargo-deb" --version | grep -q "$version"; then
  echo "== installing cargo-deb $version into .cache/cargo-deb (once)" >&2
  cargo install --locked --quiet cargo-deb --version "$version" --root "$cache" >&2
fi
cd "$root"
profile="${HANDOVER_DEB_PROFILE:-release}"
"$cache/bin/cargo-deb" -p handover --profile "$profile" "$@" >&2
target="${CARGO_TARGET_DIR:-$root/target}"
ls -t "$target"/debian/handover_*.deb | head -n 1

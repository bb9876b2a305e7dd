#!/usr/bin/env bash
# The Debian package's install test (needs root: dpkg): build it, install it, check the user,
# config permissions and unit, run the binary as the unit would (user handover, the shipped
# config, /var/lib/handover), hit /health and /ready, then purge and check what is left.
# Builds the debug profile unless HANDOVER_DEB_PROFILE is set (release builds stay out of CI).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "$(id -u)" != 0 ]]; then
  echo "test-deb: needs root (dpkg -i); run it as root" >&2
  exit 1
fi
# It installs, purges and deletes /var/lib/handover: never on a machine that runs Handover.
if dpkg -s handover >/dev/null 2>&1 || [[ -e /var/lib/handover ]]; then
  echo "test-deb: handover is installed or /var/lib/handover exists here; refusing" >&2
  exit 1
fi
command -v adduser >/dev/null || { apt-get update -qq && apt-get install -y -qq adduser >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
profile="${HANDOVER_DEB_PROFILE:-dev}"
if [[ "$profile" == dev ]]; then
  # The debug binary the e2e tests use (a no-op when built); packaged as is, fast compression.
  (cd "$root" && cargo build -p handover --bin handover)
  deb="$(HANDOVER_DEB_PROFILE=dev "$root/scripts/build-deb.sh" --no-build --fast | tail -n 1)"
else
  deb="$(HANDOVER_DEB_PROFILE="$profile" "$root/scripts/build-deb.sh" | tail -n 1)"
fi
echo "== installing $deb"
dpkg -i "$deb" >/dev/null
fail() { echo "test-deb FAILED: $*" >&2; exit 1; }
[[ -x /usr/bin/handover ]] || fail "no /usr/bin/handover"
getent passwd handover >/dev/null || fail "no handover user"
[[ "$(stat -c '%a %G' /etc/handover/handover.toml)" == "640 handover" ]] || fail "config permissions"
unit=$(dpkg -L handover | grep 'handover.service$') || fail "no systemd unit"
grep -q '^ProtectSystem=strict' "$unit" && grep -q '^NoNewPrivileges=yes' "$unit" \
  && grep -q '^User=handover' "$unit" || fail "unit not hardened"
if command -v systemd-analyze >/dev/null; then systemd-analyze verify "$unit" || fail "unit"; fi

# What the unit does: StateDirectory, then the binary as user handover with the shipped
# config; only the port is overridden (HANDOVER_LISTEN__CLIENT) so parallel runs never clash.
install -d -o handover -g handover -m 0700 /var/lib/handover
out="$(mktemp)"
runuser -u handover -- env HANDOVER_LISTEN__CLIENT=127.0.0.1:0 \
  /usr/bin/handover serve --config /etc/handover/handover.toml >"$out" 2>"$out.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out" "$out.err"' EXIT
for _ in $(seq 1 100); do
  grep -q HANDOVER_LISTENING "$out" && break
  kill -0 $pid 2>/dev/null || { cat "$out.err" >&2; fail "server exited"; }
  sleep 0.2
done
url=$(grep -o 'client=[^ ]*' "$out" | head -n 1 | cut -d= -f2)
[[ -n "$url" ]] || fail "no listening line"
curl -fsS "$url/health" | grep -q '"ok"' || fail "/health"
curl -fsS "$url/ready" | grep -q '"ready"' || fail "/ready"
[[ "$(stat -c '%U' /var/lib/handover/handover.db)" == handover ]] || fail "data owner"
kill $pid; wait $pid || true

echo "== purging"
dpkg --purge handover >/dev/null
[[ ! -e /usr/bin/handover ]] || fail "binary left after purge"
[[ ! -e /etc/handover/handover.toml ]] || fail "config left after purge"
[[ -e /var/lib/handover/handover.db ]] || fail "purge must keep the clinical data"
rm -rf /var/lib/handover
echo "test-deb: ok ($deb)"

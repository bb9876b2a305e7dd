#!/usr/bin/env bash
# Alerts bridge benchmark (docs/BENCHMARKS.md, "Alerts bridge"): the real `handover` and
# `handover-alerts` binaries on loopback; bench/alerts_load.py sends signed alerts into the
# webhook (routed to an encrypted ward room) and times each one's arrival in a nurse's /sync.
#
#   bench/alerts.sh [OUT_DIR] [alerts_load.py run options, e.g. --alerts 1000 --concurrency 16]
#
# Binaries: debug builds by default (`cargo build -p handover`, `cd bridges && cargo build -p
# handover-alerts`); PROFILE=release builds both in release (the bridge's matrix-sdk takes ~35
# min on 2 cores). Rate limits off. Prints the result JSON (also OUT_DIR/result.json).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-/tmp/handover-alerts-bench}"
shift || true
profile="${PROFILE:-debug}"
flag=(); [[ "$profile" == release ]] && flag=(--release)
(cd "$root" && cargo build -q -p handover --bin handover "${flag[@]}")
(cd "$root/bridges" && cargo build -q -p handover-alerts --bin handover-alerts "${flag[@]}")
hs_bin="$root/target/$profile/handover"
br_bin="$root/bridges/target/$profile/handover-alerts"
rm -rf "$out" && mkdir -p "$out"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hs_port=$(port); as_port=$(port); web_port=$(port)
secret="bench-secret-$(date +%s)"
cat > "$out/alerts.toml" <<TOML
[appservice]
id = "alerts"
homeserver_url = "http://127.0.0.1:$hs_port"
server_name = "localhost"
listen = "127.0.0.1:$as_port"
as_token = "as-token-bench-$RANDOM$RANDOM"
hs_token = "hs-token-bench-$RANDOM$RANDOM"
sender_localpart = "alerts"
[webhook]
listen = "127.0.0.1:$web_port"
[state]
path = "$out/alerts/alerts.db"
[log]
level = "warn"
[[sources]]
id = "news2"
secret = "$secret"
[[rooms]]
id = "ward7"
name = "Ward 7 alerts"
members = ["@nurse:localhost"]
[[rules]]
name = "ward7"
target = "room:ward7"
TOML
"$br_bin" --config "$out/alerts.toml" registration > "$out/registration.yaml"
cat > "$out/handover.toml" <<TOML
server_name = "localhost"
data_dir = "$out/hs"
[listen]
client = "127.0.0.1:$hs_port"
[registration]
mode = "open"
[rate_limit]
enabled = false
[log]
level = "warn"
[appservices]
registration_files = ["$out/registration.yaml"]
TOML
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_line() { for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no '$2' in $1" >&2; exit 1; }
"$hs_bin" serve --config "$out/handover.toml" > "$out/hs.out" 2> "$out/hs.err" & pids+=($!)
wait_line "$out/hs.out" HANDOVER_LISTENING
python3 "$root/bench/alerts_load.py" register --hs "http://127.0.0.1:$hs_port" --user nurse --out "$out/nurse.json"
"$br_bin" --config "$out/alerts.toml" > "$out/bridge.out" 2> "$out/bridge.err" & pids+=($!)
wait_line "$out/bridge.out" HANDOVER_ALERTS_LISTENING
echo "== $profile binaries, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 "$root/bench/alerts_load.py" run --hs "http://127.0.0.1:$hs_port" \
  --webhook "http://127.0.0.1:$web_port" --token-file "$out/nurse.json" --secret "$secret" \
  --out "$out/result.json" "$@"

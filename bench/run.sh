#!/usr/bin/env bash
# Side-by-side load benchmark: Synapse (PyPI, SQLite) and Handover (release build, SQLite) on the
# same machine, one after the other, driven by the server-agnostic ../shared/tools/peers/mx_loadbench.py.
# Usage: bench/run.sh [OUT_DIR=/tmp/handover-bench] [extra mx_loadbench args...]
# Needs: ../shared beside the repo; python3; network access to PyPI (the Synapse venv is created by
# synapse_peer.sh on first use). Results: OUT_DIR/{synapse,handover}.json
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/../shared/tools/peers"
out="${1:-/tmp/handover-bench}"; shift || true
venv="${VENV:-/tmp/handover-peers/venv}"
mkdir -p "$out"

# Synapse on 127.0.0.1:8008 (synapse_peer.sh: SQLite, rate limits off, open registration).
export VENV="$venv"
syn="$out/synapse-data"
rm -rf "$syn"
"$peers/synapse_peer.sh" init "$syn" 127.0.0.1 >/dev/null
"$venv/bin/pip" install -q aiohttp
"$peers/synapse_peer.sh" start "$syn" 127.0.0.1 >/dev/null
trap '"$peers/synapse_peer.sh" stop "$syn" 127.0.0.1 >/dev/null 2>&1 || true' EXIT
for _ in $(seq 60); do curl -sf http://127.0.0.1:8008/_matrix/client/versions >/dev/null && break; sleep 1; done
"$venv/bin/python" "$peers/mx_loadbench.py" http://127.0.0.1:8008 --label synapse \
  --server-pid "$(cat "$syn/launcher.pid")" --out "$out/synapse.json" "$@" >/dev/null
"$peers/synapse_peer.sh" stop "$syn" 127.0.0.1 >/dev/null
trap - EXIT

# Handover, release build, same workload.
(cd "$root" && cargo build --release -p handover --bin handover)
ho="$out/handover-data"
rm -rf "$ho"; mkdir -p "$ho"
HANDOVER_DATA_DIR="$ho" HANDOVER_LISTEN__CLIENT=127.0.0.1:8009 HANDOVER_REGISTRATION__MODE=open \
  HANDOVER_RATE_LIMIT__ENABLED=false HANDOVER_LOG__LEVEL=warn \
  "${CARGO_TARGET_DIR:-$root/target}/release/handover" serve --config "$root/config/dev.toml" > "$ho/stdout" 2> "$ho/stderr" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf http://127.0.0.1:8009/_matrix/client/versions >/dev/null && break; sleep 0.2; done
"$venv/bin/python" "$peers/mx_loadbench.py" http://127.0.0.1:8009 --label handover \
  --server-pid "$pid" --out "$out/handover.json" "$@" >/dev/null
kill "$pid"; trap - EXIT

"$venv/bin/python" "$root/bench/compare.py" "$out/synapse.json" "$out/handover.json"

#!/usr/bin/env bash
# A/B of two Handover builds on the same machine, minutes apart: ROUNDS rounds, alternating A and B,
# each run on a fresh data directory with the same mx_loadbench workload; prints the medians side
# by side (bench/compare_ab.py). Build both first (`cargo build --release -p handover`, once per
# head, e.g. into two CARGO_TARGET_DIRs).
# Usage: bench/ab.sh BIN_A BIN_B [ROUNDS=3] [OUT=/tmp/handover-ab] [extra mx_loadbench args...]
# CONFIG_A / CONFIG_B: each build's own config/dev.toml when the heads differ in config keys
# (default: this checkout's).
# Needs: ../shared beside the repo, python3 with aiohttp (VENV, default /tmp/bench-venv: created).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/../shared/tools/peers"
a=$1 b=$2 rounds=${3:-3} out=${4:-/tmp/handover-ab}
shift 2; shift || true; shift || true
venv="${VENV:-/tmp/bench-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import aiohttp' 2>/dev/null || "$venv/bin/pip" install -q aiohttp
mkdir -p "$out"

run() { # label binary config round
  local label=$1 bin=$2 config=$3 round=$4; shift 4
  local data="$out/data-$label-$round"
  rm -rf "$data"; mkdir -p "$data"
  HANDOVER_DATA_DIR="$data" HANDOVER_LISTEN__CLIENT=127.0.0.1:8009 HANDOVER_REGISTRATION__MODE=open \
    HANDOVER_RATE_LIMIT__ENABLED=false HANDOVER_LOG__LEVEL=warn \
    "$bin" serve --config "$config" >"$data/stdout" 2>"$data/stderr" &
  local pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:8009/_matrix/client/versions >/dev/null && break; sleep 0.2; done
  "$venv/bin/python" "$peers/mx_loadbench.py" http://127.0.0.1:8009 --label "$label" \
    --server-pid "$pid" --out "$out/$label-$round.json" "$@" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
for r in $(seq "$rounds"); do
  run a "$a" "${CONFIG_A:-$root/config/dev.toml}" "$r" "$@"
  run b "$b" "${CONFIG_B:-$root/config/dev.toml}" "$r" "$@"
done
python3 "$root/bench/compare_ab.py" "$out" "$rounds"

#!/usr/bin/env bash
# Measures the simulator's own throughput on getuserphonenumber: every request redeems a fresh single-use phone
# code (minted in bulk beforehand), so the simulator does its full work per call. The simulator is pinned to
# core 0 and wrk to core 1. Usage: bench/sim-throughput.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
port=19100
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked -p wxlogin >/dev/null
work=$(mktemp -d)
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
appid=wx00000000000000b1
secret=00000000000000000000000000000b1b
taskset -c 0 ./target/release/wxlogin sim --listen 127.0.0.1:$port --app $appid:$secret >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 50); do curl -fsS http://127.0.0.1:$port/sandbox/v1/stats >/dev/null 2>&1 && break; sleep 0.1; done
# Enough codes for a generous upper bound of 120k requests/s.
need=$((secs * 120000))
touch "$work/codes"
while [ "$(wc -l <"$work/codes" 2>/dev/null || echo 0)" -lt "$need" ]; do
  curl -fsS -X POST http://127.0.0.1:$port/sandbox/v1/batch -d '{"count":100000}' | jq -r '.items[].phoneCode' >>"$work/codes"
done
token=$(curl -fsS -X POST http://127.0.0.1:$port/cgi-bin/stable_token \
  -d "{\"grant_type\":\"client_credential\",\"appid\":\"$appid\",\"secret\":\"$secret\"}" | jq -r .access_token)
CODES="$work/codes" TOKEN="$token" THREADS=2 taskset -c 1 wrk -t2 -c"$conns" -d"${secs}s" --latency \
  -s bench/sim-phone.lua http://127.0.0.1:$port/ | tee "$work/wrk.txt"
curl -fsS http://127.0.0.1:$port/sandbox/v1/stats | jq '.routes["/wxa/business/getuserphonenumber"]'

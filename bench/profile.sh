#!/usr/bin/env bash
# Profiles wxlogin under scenario (a) — /api/getPhone in verify mode, simulator latency 0 — with perf (software
# cpu-clock samples: this VM exposes no hardware counters). Server pinned to core 0, simulator and wrk to core 1.
# Usage: bench/profile.sh [path/to/wxlogin]   (PERF=0 for throughput only). Output under $OUT (default /tmp/wxlogin-profile).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-./target/release/wxlogin}
OUT=${OUT:-/tmp/wxlogin-profile}
SIM=19200; SRV=19201
APP=wx00000000000000a1; SEC=00000000000000000000000000000aa1
KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ "${PERF:-1}" = 0 ] || command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
rm -rf "$OUT"; mkdir -p "$OUT"
taskset -c 1 "$BIN" sim --listen 127.0.0.1:$SIM --app $APP:$SEC >"$OUT/sim.log" 2>&1 & SIMPID=$!
SRVPID=
trap 'kill $SIMPID $SRVPID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fsS 127.0.0.1:$SIM/sandbox/v1/stats >/dev/null 2>&1 && break; sleep 0.1; done
for _ in 1 2 3; do
  curl -fsS -X POST 127.0.0.1:$SIM/sandbox/v1/batch -d '{"count":100000}' | jq -c '.items[] | {loginCode, phoneCode}' >>"$OUT/bodies"
done
WX_APPID=$APP WX_SECRET=$SEC WXLOGIN_DATA_KEY=$KEY RUST_LOG=warn taskset -c 0 "$BIN" serve --listen 127.0.0.1:$SRV \
  --data-dir "$OUT/data" --wechat-base-url http://127.0.0.1:$SIM --rate-limits off >"$OUT/serve.log" 2>&1 & SRVPID=$!
for _ in $(seq 1 50); do curl -fsS 127.0.0.1:$SRV/healthz >/dev/null 2>&1 && break; sleep 0.1; done
head -200 "$OUT/bodies" >"$OUT/warm"; tail -n +201 "$OUT/bodies" >"$OUT/main"
BODIES=$OUT/warm URLPATH=/api/getPhone THREADS=2 taskset -c 1 wrk -t2 -c16 -d1s -s bench/login.lua http://127.0.0.1:$SRV/ >/dev/null
if [ "${PERF:-1}" = 1 ]; then
  perf record -F 999 -g -e cpu-clock -p $SRVPID -o "$OUT/perf.data" -- sleep 8 >/dev/null 2>&1 & PERFPID=$!
fi
BODIES=$OUT/main URLPATH=/api/getPhone THREADS=2 taskset -c 1 wrk -t2 -c64 -d10s --latency -s bench/login.lua \
  http://127.0.0.1:$SRV/ | grep -E "Requests/sec|  50%|  99%"
if [ "${PERF:-1}" = 1 ]; then
  wait $PERFPID || true
  perf report -i "$OUT/perf.data" --no-children --sort comm,dso -g none --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
  echo "full report: perf report -i $OUT/perf.data --no-children --sort symbol -g none"
fi
grep VmHWM /proc/$SRVPID/status

#!/usr/bin/env bash
# The browser-sandbox e2e test. With WXLOGIN_URL set, it drives that running sandbox-mode service; without, it
# starts target/debug/wxlogin (or $WXLOGIN_BIN) in sandbox mode on a free port with a throw-away data dir, and stops
# it afterwards. Needs Debian's chromium (apt-get install -y chromium fonts-wqy-microhei; the font draws the Chinese
# in the screenshot). UPDATE_SCREENSHOT=1 also copies the screenshots to docs/sandbox.png and docs/qr-login.png.
# test/qr-login.test.js serves docs/examples/scan-login.html on another origin, http://127.0.0.1:$E2E_STATIC_PORT,
# which the service must allow by CORS: the service started here gets WXLOGIN_CORS_ORIGINS for it; with WXLOGIN_URL,
# set E2E_STATIC_PORT to a port whose origin that service lists in its cors_origins.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"

[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund

free_port() {
  node -e 'const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

if [ -z "${WXLOGIN_URL:-}" ]; then
  BIN="${WXLOGIN_BIN:-$ROOT/target/debug/wxlogin}"
  [ -x "$BIN" ] || { echo "no $BIN: build it (cargo build -p wxlogin) or set WXLOGIN_URL" >&2; exit 1; }
  PORT="$(free_port)"
  export E2E_STATIC_PORT="${E2E_STATIC_PORT:-$(free_port)}"
  DATA="$(mktemp -d)"
  env -u WX_APPID -u WX_SECRET WXLOGIN_CORS_ORIGINS="http://127.0.0.1:$E2E_STATIC_PORT" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$DATA/serve.log" 2>&1 &
  PID=$!
  trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"' EXIT
  export WXLOGIN_URL="http://127.0.0.1:$PORT"
  for _ in $(seq 1 100); do
    curl -fsS "$WXLOGIN_URL/sandbox/v1/stats" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$DATA/serve.log" >&2; exit 1; }
    sleep 0.1
  done
fi

npm test

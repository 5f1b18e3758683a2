// A development aid, not the product: a tiny in-memory stand-in for `wxlogin serve` in sandbox mode, implementing
// just the HTTP contract the sandbox page and the e2e test use (the /api routes, the /sandbox/v1 device API, and the
// static files under /sandbox/). It lets the page be developed and the e2e test be debugged without the Rust build;
// CI runs the e2e test against the real service.
//
//   node mock-server.js [port]     (default 18081; prints its URL)
const http = require('http');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { createQr, qrRoute } = require('./mock-qr');

const REPO = path.resolve(__dirname, '..');
const UI_DIR = path.join(REPO, 'crates/wxlogin/sandbox-ui');
const MP_DIR = path.join(REPO, 'miniprogram');
// The template files the service serves under /sandbox/miniprogram/ (keep in step with the service).
const MP_FILES = ['utils/auth.js', 'utils/session.js', 'config.js'];
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};
const APPID = 'wxsandbox00000001';

function createState() {
  return {
    users: new Map(), // openid → user
    accounts: new Map(), // openid → phone bound at the service
    loginCodes: new Map(), // code → {openid, used}
    phoneCodes: new Map(), // code → {openid, used}
    tickets: new Map(), // ticket → openid
    sessions: new Map(), // token → openid
    refreshTokens: new Map(), // refresh token → {openid, token}: the access token it came with
    stats: { tokensIssued: 1, routes: {} },
    qr: createQr(), // scan-to-log-in (mock-qr.js)
  };
}

function rand(n = 12) {
  return crypto.randomBytes(n).toString('hex');
}

function mask(p) {
  return `${p.slice(0, 3)}****${p.slice(-4)}`;
}

function count(state, route, error) {
  const r = state.stats.routes[route] || (state.stats.routes[route] = { calls: 0, errors: 0 });
  r.calls += 1;
  if (error) r.errors += 1;
}

const ok = (data) => [200, { code: 0, msg: 'success', data }];
const fail = (status, code, error, msg) => [status, { code, msg, error }];

function redeemLoginCode(state, code) {
  const c = state.loginCodes.get(code);
  count(state, '/sns/jscode2session', !c || c.used);
  if (!c) return { err: fail(400, 2001, 'login_code_invalid', '登录凭证无效，请重试') };
  if (c.used) return { err: fail(400, 2002, 'login_code_used', '登录凭证已使用，请重试') };
  c.used = true;
  return { openid: c.openid };
}

function redeemPhoneCode(state, code, openid) {
  const c = state.phoneCodes.get(code);
  const bad = !c || c.used || c.openid !== openid;
  count(state, '/wxa/business/getuserphonenumber', bad);
  if (!c || c.used) return { err: fail(400, 2003, 'phone_code_invalid', '手机号验证已失效，请重新点击登录') };
  if (c.openid !== openid) return { err: fail(403, 2004, 'phone_code_mismatch', '手机号凭证与当前用户不符') };
  c.used = true;
  return { phone: state.users.get(openid).phoneNumber };
}

function accountId(openid) {
  return `acc_${crypto.createHash('sha256').update(openid).digest('hex').slice(0, 24)}`;
}

function session(state, openid, withStatus) {
  const token = `mock.${rand(24)}`;
  state.sessions.set(token, openid);
  const data = { phone: state.accounts.get(openid), openid, token, expiresIn: 2592000, accountId: accountId(openid), appid: APPID };
  return withStatus ? Object.assign({ status: 'ok' }, data) : data;
}

function bearer(state, req) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  return m ? state.sessions.get(m[1]) : undefined;
}

function route(state, req, body) {
  const key = `${req.method} ${req.url.split('?')[0]}`;
  switch (key) {
    case 'POST /sandbox/v1/users': {
      const phone = String(body.phoneNumber || '');
      if (!/^\d{5,15}$/.test(phone)) return [400, { error: 'invalid_phone' }];
      const existing = [...state.users.values()].find((u) => u.purePhoneNumber === phone);
      if (existing) return [200, existing];
      const openid = `o${rand(14)}`;
      const countryCode = String(body.countryCode || '86');
      const user = { openid, unionid: `u${rand(14)}`, phoneNumber: phone, purePhoneNumber: phone, countryCode, appid: APPID };
      state.users.set(openid, user);
      return [201, user];
    }
    case 'GET /sandbox/v1/users':
      return [200, { users: [...state.users.values()] }];
    case 'POST /sandbox/v1/login-code':
    case 'POST /sandbox/v1/phone-code': {
      if (!state.users.has(body.openid)) return [404, { error: 'unknown_user' }];
      const code = rand(16);
      const codes = key.endsWith('login-code') ? state.loginCodes : state.phoneCodes;
      codes.set(code, { openid: body.openid, used: false });
      return [200, { code, expiresIn: 300 }];
    }
    case 'GET /sandbox/v1/apps':
      return [200, [{ appid: APPID, bound: true }]];
    case 'GET /sandbox/v1/stats':
      return [200, state.stats];
    case 'POST /api/v1/login': {
      const lc = redeemLoginCode(state, body.loginCode);
      if (lc.err) return lc.err;
      if (state.accounts.has(lc.openid)) return ok(session(state, lc.openid, true));
      const ticket = rand(16);
      state.tickets.set(ticket, lc.openid);
      return ok({ status: 'phone_required', ticket, expiresIn: 300 });
    }
    case 'POST /api/v1/phone': {
      let openid = bearer(state, req);
      if (!openid) {
        openid = state.tickets.get(body.ticket);
        if (!openid) return fail(401, 2005, 'ticket_invalid', '登录已过期，请重试');
        state.tickets.delete(body.ticket);
      }
      const pc = redeemPhoneCode(state, body.phoneCode, openid);
      if (pc.err) return pc.err;
      state.accounts.set(openid, pc.phone);
      return ok(session(state, openid, true));
    }
    case 'POST /api/getPhone': {
      const lc = redeemLoginCode(state, body.loginCode);
      if (lc.err) return lc.err;
      const pc = redeemPhoneCode(state, body.phoneCode, lc.openid);
      if (pc.err) return pc.err;
      state.accounts.set(lc.openid, pc.phone);
      return ok(session(state, lc.openid, false));
    }
    case 'GET /api/v1/me': {
      const openid = bearer(state, req);
      if (!openid) return fail(401, 2006, 'unauthorized', '请先登录');
      const now = new Date().toISOString();
      const { unionid } = state.users.get(openid);
      return ok({ accountId: accountId(openid), appid: APPID, openid, unionid, phone: mask(state.accounts.get(openid)), createdAt: now, updatedAt: now });
    }
    case 'POST /api/v1/logout': {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
      if (m) state.sessions.delete(m[1]);
      for (const [r, v] of state.refreshTokens) if (m && v.token === m[1]) state.refreshTokens.delete(r);
      return ok({});
    }
    case 'POST /api/v1/refresh': {
      const r = state.refreshTokens.get(body.refreshToken);
      if (!r) return fail(401, 2010, 'refresh_invalid', '登录已过期，请重新登录');
      state.refreshTokens.delete(body.refreshToken);
      const s = session(state, r.openid, false);
      const refreshToken = `wxr_mock${rand(16)}`;
      state.refreshTokens.set(refreshToken, { openid: r.openid, token: s.token });
      return ok(Object.assign(s, { refreshToken, refreshExpiresIn: 2592000 }));
    }
    default:
      return qrRoute(state.qr, req, body, {
        appid: APPID,
        openidOf: (r) => bearer(state, r),
        session: (openid) => {
          const s = session(state, openid, false);
          const refreshToken = `wxr_mock${rand(16)}`;
          state.refreshTokens.set(refreshToken, { openid, token: s.token });
          return Object.assign(s, { phone: mask(state.accounts.get(openid)), refreshToken, refreshExpiresIn: 2592000 });
        },
      });
  }
}

function serveStatic(req, res) {
  const url = req.url.split('?')[0];
  let file = null;
  if (url === '/sandbox/' || url === '/sandbox') file = path.join(UI_DIR, 'index.html');
  else if (url.startsWith('/sandbox/miniprogram/')) {
    const rel = url.slice('/sandbox/miniprogram/'.length);
    if (MP_FILES.includes(rel)) file = path.join(MP_DIR, rel);
  } else if (/^\/sandbox\/[\w.-]+$/.test(url)) file = path.join(UI_DIR, url.slice('/sandbox/'.length));
  if (!file || !fs.existsSync(file)) return false;
  res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
  res.end(fs.readFileSync(file));
  return true;
}

function start(port = 0, host = '127.0.0.1') {
  const state = createState();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => { raw += c; });
    // CORS for any origin (the service allows only its cors_origins).
    if (req.headers.origin) {
      res.setHeader('access-control-allow-origin', req.headers.origin);
      res.setHeader('access-control-allow-headers', 'authorization, content-type, x-wx-appid');
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204);
      res.end();
      return;
    }
    req.on('end', async () => {
      let body = {};
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 1001, msg: '请求格式错误', error: 'invalid_json' }));
        return;
      }
      const answer = await route(state, req, body);
      if (answer) {
        res.writeHead(answer[0], { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer[1]));
      } else if (!(req.method === 'GET' && serveStatic(req, res))) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 1004, msg: '接口不存在', error: 'not_found' }));
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const url = `http://${host}:${server.address().port}`;
      // closeAllConnections: a long poll held open would otherwise keep the server up for its 25 s.
      resolve({ url, close: () => new Promise((r) => { server.close(r); server.closeAllConnections(); }) });
    });
  });
}

module.exports = { start, MP_FILES };

if (require.main === module) {
  start(Number(process.argv[2] || 18081)).then(({ url }) => {
    process.stdout.write(`mock wxlogin (sandbox mode) at ${url}/sandbox/\n`);
  });
}

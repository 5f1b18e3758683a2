// The mock's scan-to-log-in routes (see mock-server.js: a development aid, CI runs the tests against the service):
// POST /api/v1/qr-login, the long poll GET /api/v1/qr-login/{id}?wait=, the phone's /scan, /confirm, /deny, and the
// simulator's POST /sandbox/v1/scan. The mock's "code" is an SVG data URL that carries the id in plain sight.
const crypto = require('crypto');

const TTL = 120;
const b64url = (n) => crypto.randomBytes(n).toString('base64url');
const ok = (data) => [200, { code: 0, msg: 'success', data }];
const fail = (status, code, error, msg) => [status, { code, msg, error }];

function codeImage(id) {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="220" height="220" data-scene="${id}">`
    + '<rect width="220" height="220" fill="#fff"/><circle cx="110" cy="110" r="90" fill="none" stroke="#07c160" '
    + 'stroke-width="12"/><text x="110" y="115" font-size="14" text-anchor="middle">mock 小程序码</text></svg>';
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}

function sceneOf(image) {
  const b64 = String(image || '').replace(/^data:[^,]*,/, '');
  const m = /data-scene="([\w-]+)"/.exec(Buffer.from(b64, 'base64').toString());
  return m ? m[1] : null;
}

function createQr() {
  return { logins: new Map() }; // id → {pollToken, status, createdAt, openid, seen, waiters, result, req}
}

function expireIfDue(l) {
  if (['pending', 'scanned'].includes(l.status) && Date.now() - l.createdAt > TTL * 1000) change(l, 'expired');
}

function change(l, status) {
  l.status = status;
  l.waiters.splice(0).forEach((wake) => wake());
}

// What the poller gets now: the first 'confirmed' answer carries the session.
function pollAnswer(l) {
  l.seen = l.status;
  if (l.status === 'confirmed' && l.result) {
    const r = l.result;
    l.result = null;
    return ok(Object.assign({ status: 'confirmed' }, r));
  }
  return ok({ status: l.status });
}

// Resolves with [status, body], or null when the route is not one of these. `session(openid)` mints the web's.
function qrRoute(qr, req, body, { openidOf, session, appid }) {
  const url = new URL(req.url, 'http://mock');
  const p = url.pathname;
  if (req.method === 'POST' && p === '/api/v1/qr-login') {
    const id = b64url(16);
    qr.logins.set(id, {
      pollToken: `wxq_${b64url(32)}`, status: 'pending', createdAt: Date.now(), openid: null, seen: null, waiters: [],
      result: null, ip: req.socket.remoteAddress, userAgent: req.headers['user-agent'] || '', origin: req.headers.origin || null,
    });
    return ok({ id, pollToken: qr.logins.get(id).pollToken, image: codeImage(id), expiresIn: TTL });
  }
  if (req.method === 'POST' && p === '/sandbox/v1/scan') {
    const scene = body.scene || sceneOf(body.image);
    if (!scene) return [400, { errcode: 40097, errmsg: 'no code in the image' }];
    return [200, { appid, path: 'pages/qr-confirm/qr-confirm', query: { scene: encodeURIComponent(scene) }, scene: 1047, openid: body.openid, envVersion: 'release' }];
  }
  const m = /^\/api\/v1\/qr-login\/([\w-]+)(?:\/(scan|confirm|deny))?$/.exec(p);
  if (!m) return null;
  const l = qr.logins.get(m[1]);
  if (l) expireIfDue(l);
  if (!m[2] && req.method === 'GET') {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    if (!l || !bearer || bearer[1] !== l.pollToken) return fail(401, 2006, 'unauthorized', '请先登录');
    const wait = Math.min(25, Math.max(0, Number(url.searchParams.get('wait') || 0)));
    if (l.seen !== l.status || ['confirmed', 'denied', 'expired'].includes(l.status) || !wait) return pollAnswer(l);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { expireIfDue(l); resolve(pollAnswer(l)); }, wait * 1000);
      timer.unref(); // a poll held open does not keep the mock alive
      l.waiters.push(() => { clearTimeout(timer); resolve(pollAnswer(l)); });
    });
  }
  if (req.method !== 'POST' || !m[2]) return null;
  const openid = openidOf(req);
  if (!openid) return fail(401, 2006, 'unauthorized', '请先登录');
  if (!l) return fail(404, 2012, 'qr_login_not_found', '二维码不存在');
  if (l.status === 'expired') return fail(409, 2013, 'qr_login_expired', '二维码已过期，请刷新网页');
  if (['confirmed', 'denied'].includes(l.status) || (l.openid && l.openid !== openid)) {
    return fail(409, 2014, 'qr_login_used', '二维码已使用');
  }
  if (m[2] === 'scan') {
    l.openid = openid;
    if (l.status !== 'scanned') change(l, 'scanned');
    return ok({ status: 'scanned', ip: l.ip, userAgent: l.userAgent, origin: l.origin,
      createdAt: Math.floor(l.createdAt / 1000), expiresIn: Math.max(0, TTL - Math.floor((Date.now() - l.createdAt) / 1000)) });
  }
  if (l.status !== 'scanned') return fail(409, 2015, 'qr_login_not_scanned', '请先扫码');
  if (m[2] === 'confirm') {
    l.result = session(openid);
    change(l, 'confirmed');
    return ok({ status: 'confirmed' });
  }
  change(l, 'denied');
  return ok({ status: 'denied' });
}

module.exports = { createQr, qrRoute };

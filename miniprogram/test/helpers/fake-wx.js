// A mocked `wx` in front of a small fake of the wxlogin service, stateful enough to play the whole flow.
//
// The device: `device.openid` is the WeChat user on the phone; wx.login hands out login codes `lc:<openid>:<n>`;
// a phone button "allow" is `allow(phone)` → detail {code:'pc:<phone>', errMsg:'getPhoneNumber:ok'}.
// The service answers like the real one ({code:0,msg,data} or {code,msg,error} with a 4xx/5xx), and
// `service.inject(path, answer)` queues a one-off answer for the next call to `path`:
//   {statusCode, body} a canned answer; {fail: {errMsg, errno}} a network failure (wx.request's `fail`).
//
// Sessions as the service keeps them: a login answers an access token `eyJtok-<n>` (expiresIn 900) and a refresh
// token `wxr_tok-<n>`; POST /api/v1/refresh rotates the refresh token, remembers the spent one, and a spent one
// presented again ends the whole session (refresh_reused). `service.legacy = true` makes logins answer an earlier
// release's opaque `wxs_tok-<n>` without a refresh token. `sessions.clear()` expires every access token (the
// refresh tokens still work); `endSessions()` forgets every session.
//
// Scan-to-log-in (issue 16, the mini program's side): `service.addQrLogin(id, fields)` stands for a web page's
// POST /api/v1/qr-login (ip, userAgent, origin, createdAt in unix seconds; expired: true for one past its 120 s);
// POST /api/v1/qr-login/{id}/scan|confirm|deny then answer as the service's contract says (404 qr_login_not_found,
// 409 qr_login_expired, qr_login_used / qr_login_not_scanned), keyed on the Bearer session's WeChat user.

const BASE = 'https://wxlogin.test';

function ok(data) {
  return { statusCode: 200, body: { code: 0, msg: 'success', data } };
}

function err(statusCode, code, error, msg) {
  return { statusCode, body: { code, msg, error } };
}

function createService() {
  const users = new Map(); // openid → full phone
  const tickets = new Map(); // ticket → openid
  const sessions = new Map(); // live access token → {openid, sid, appid}
  const refreshTokens = new Map(); // live refresh token → {openid, sid, appid}
  const spentRefresh = new Map(); // rotated-away refresh token → sid
  const usedLoginCodes = new Set();
  const usedPhoneCodes = new Set();
  const injected = new Map(); // path → [answer]
  const calls = []; // {method, path, data, header}
  const qrLogins = new Map(); // id → {status, openid (who scanned), ip, userAgent, origin, createdAt, expired}
  const service = { legacy: false };
  let n = 0;

  const APPID = 'wx00000000000000a1';

  // A new access token and refresh token for session `sid`.
  function mint(s) {
    n += 1;
    const token = `eyJtok-${n}`;
    const refreshToken = `wxr_tok-${n}`;
    sessions.set(token, s);
    refreshTokens.set(refreshToken, s);
    return { token, expiresIn: 900, refreshToken, refreshExpiresIn: 2592000 };
  }

  function endSession(sid) {
    for (const map of [sessions, refreshTokens]) {
      for (const [token, s] of map) if (s.sid === sid) map.delete(token);
    }
  }

  // Like the service, a login lands on the app the body names, else on the one app this fake serves.
  function session(openid, appid = APPID) {
    n += 1;
    const answer = { status: 'ok', accountId: `acc_${openid}`, appid, phone: users.get(openid), openid };
    if (service.legacy) {
      const token = `wxs_tok-${n}`;
      sessions.set(token, { openid, sid: `sid-${n}`, appid });
      return Object.assign(answer, { token, expiresIn: 2592000 });
    }
    return Object.assign(answer, mint({ openid, sid: `sid-${n}`, appid }));
  }

  function loginCodeOpenid(code) {
    const m = /^lc:([^:]+):\d+$/.exec(code || '');
    if (!m) return { error: err(400, 2001, 'login_code_invalid', '登录凭证无效，请重试') };
    if (usedLoginCodes.has(code)) return { error: err(400, 2002, 'login_code_used', '登录凭证已使用，请重试') };
    usedLoginCodes.add(code);
    return { openid: m[1] };
  }

  function phoneOfCode(code) {
    const m = /^pc:(\d+)$/.exec(code || '');
    if (!m || usedPhoneCodes.has(code)) {
      return { error: err(400, 2003, 'phone_code_invalid', '手机号凭证已失效') };
    }
    usedPhoneCodes.add(code);
    return { phone: m[1] };
  }

  function bearerSession(header) {
    const auth = (header && header.Authorization) || '';
    return sessions.get(auth.replace(/^Bearer /, ''));
  }

  function bearer(header) {
    const s = bearerSession(header);
    return s && s.openid;
  }

  // POST /api/v1/qr-login/{id}/{scan|confirm|deny}, as the contract says.
  function qrRoute(id, action, header) {
    const openid = bearer(header);
    if (!openid) return err(401, 2006, 'unauthorized', '请先登录');
    const q = qrLogins.get(id);
    if (!q) return err(404, 2012, 'qr_login_not_found', '二维码不存在');
    if (q.expired) return err(409, 2013, 'qr_login_expired', '二维码已过期');
    const used = err(409, 2014, 'qr_login_used', '二维码已被使用');
    if (q.status === 'confirmed' || q.status === 'denied') return used;
    if (q.openid && q.openid !== openid) return used;
    if (action === 'scan') {
      q.status = 'scanned';
      q.openid = openid;
      return ok({
        status: 'scanned', ip: q.ip, userAgent: q.userAgent, origin: q.origin, createdAt: q.createdAt, expiresIn: 100,
      });
    }
    if (q.status !== 'scanned') return err(409, 2015, 'qr_login_not_scanned', '二维码尚未扫描');
    q.status = action === 'confirm' ? 'confirmed' : 'denied';
    return ok({ status: q.status });
  }

  const routes = {
    'POST /api/v1/login'({ data }) {
      const lc = loginCodeOpenid(data.loginCode);
      if (lc.error) return lc.error;
      if (users.has(lc.openid)) return ok(session(lc.openid, data.appid));
      n += 1;
      const ticket = `ticket-${n}`;
      tickets.set(ticket, lc.openid);
      return ok({ status: 'phone_required', ticket, expiresIn: 300 });
    },
    'POST /api/v1/phone'({ data, header }) {
      let openid = bearer(header);
      if (!openid) {
        if (!data.ticket) return err(401, 2006, 'unauthorized', '请先登录');
        openid = tickets.get(data.ticket);
        if (!openid) return err(401, 2005, 'ticket_invalid', '登录已过期，请重试');
        tickets.delete(data.ticket);
      }
      const pc = phoneOfCode(data.phoneCode);
      if (pc.error) return pc.error;
      users.set(openid, pc.phone);
      return ok(session(openid, data.appid));
    },
    'POST /api/getPhone'({ data }) {
      const lc = loginCodeOpenid(data.loginCode);
      if (lc.error) return lc.error;
      const pc = phoneOfCode(data.phoneCode);
      if (pc.error) return pc.error;
      users.set(lc.openid, pc.phone);
      const s = session(lc.openid, data.appid);
      delete s.status;
      return ok(s);
    },
    'GET /api/v1/me'({ header }) {
      const openid = bearer(header);
      if (!openid) return err(401, 2006, 'unauthorized', '请先登录');
      const p = users.get(openid);
      return ok({
        accountId: `acc_${openid}`,
        appid: APPID,
        openid,
        unionid: `u-${openid}`,
        phone: `${p.slice(0, 3)}****${p.slice(-4)}`,
        identities: [{ appid: APPID, openid }, { appid: 'wx00000000000000b2', openid: `${openid}-b` }],
      });
    },
    'POST /api/v1/refresh'({ data }) {
      const presented = data.refreshToken;
      if (spentRefresh.has(presented)) {
        endSession(spentRefresh.get(presented));
        return err(401, 2008, 'refresh_reused', '登录已失效，请重新登录');
      }
      const s = refreshTokens.get(presented);
      if (!s) return err(401, 2007, 'refresh_invalid', '登录已过期，请重新登录');
      refreshTokens.delete(presented);
      spentRefresh.set(presented, s.sid);
      return ok(Object.assign({ accountId: `acc_${s.openid}`, appid: s.appid, openid: s.openid }, mint(s)));
    },
    // RFC 7009: form-encoded, 200 with an empty body whether or not the token was known.
    'POST /oauth2/revoke'({ data, header }) {
      if (header['content-type'] !== 'application/x-www-form-urlencoded' || typeof data !== 'string') {
        return err(400, 1001, 'invalid_request', '请求格式错误');
      }
      const s = refreshTokens.get(new URLSearchParams(data).get('token'));
      if (s) endSession(s.sid);
      return { statusCode: 200, body: '' };
    },
    // The account and its sessions go; the user is unknown to the next login.
    'DELETE /api/v1/me'({ header }) {
      const openid = bearer(header);
      if (!openid) return err(401, 2006, 'unauthorized', '请先登录');
      users.delete(openid);
      for (const s of [...sessions.values()]) if (s.openid === openid) endSession(s.sid);
      return ok({});
    },
    'POST /api/v1/logout'({ header }) {
      const s = bearerSession(header);
      if (s) endSession(s.sid);
      return ok({});
    },
  };

  return Object.assign(service, {
    users,
    tickets,
    sessions,
    refreshTokens,
    calls,
    qrLogins,
    addQrLogin(id, fields = {}) {
      qrLogins.set(id, Object.assign({
        status: 'pending', ip: '203.0.113.7', userAgent: '', origin: null, createdAt: 1795846985, expired: false,
      }, fields));
    },
    endSessions() {
      sessions.clear();
      refreshTokens.clear();
    },
    inject(path, answer) {
      if (!injected.has(path)) injected.set(path, []);
      injected.get(path).push(answer);
    },
    callsTo(path) {
      return calls.filter((c) => c.path === path);
    },
    handle(req) {
      const path = req.url.replace(BASE, '');
      calls.push({ method: req.method, path, data: req.data, header: req.header });
      const queue = injected.get(path);
      if (queue && queue.length) return queue.shift();
      const qr = /^\/api\/v1\/qr-login\/([^/]+)\/(scan|confirm|deny)$/.exec(path);
      if (qr && req.method === 'POST') return qrRoute(qr[1], qr[2], req.header || {});
      const route = routes[`${req.method} ${path}`];
      if (!route) return err(404, 1004, 'not_found', '接口不存在');
      return route({ data: req.data || {}, header: req.header || {} });
    },
  });
}

// Installs the mocks on the global `wx` (miniprogram-simulate's, when loaded, keeping its other APIs).
function installWx({ openid = 'o-alice', service = createService() } = {}) {
  const device = { openid, loginCount: 0, privacyListener: null };
  const storage = new Map();
  const wx = global.wx || {};
  global.wx = wx;

  wx.login = jest.fn((opts) => {
    device.loginCount += 1;
    setTimeout(() => opts.success({ code: `lc:${device.openid}:${device.loginCount}`, errMsg: 'login:ok' }), 0);
  });
  wx.request = jest.fn((opts) => {
    setTimeout(() => {
      const answer = service.handle(opts);
      if (answer.fail) opts.fail(answer.fail);
      else opts.success({ statusCode: answer.statusCode, data: answer.body, header: {} });
    }, 0);
  });
  wx.setStorageSync = jest.fn((k, v) => storage.set(k, v));
  wx.getStorageSync = jest.fn((k) => (storage.has(k) ? storage.get(k) : ''));
  wx.removeStorageSync = jest.fn((k) => storage.delete(k));
  wx.showToast = jest.fn();
  wx.reLaunch = jest.fn();
  // The user's answer to the next modal: device.modalConfirm (default: confirm).
  wx.showModal = jest.fn((opts) => {
    const confirm = device.modalConfirm !== false;
    setTimeout(() => opts.success && opts.success({ confirm, cancel: !confirm, errMsg: 'showModal:ok' }), 0);
  });
  wx.openPrivacyContract = jest.fn((opts) => opts && opts.success && opts.success({}));
  wx.getPrivacySetting = jest.fn((opts) =>
    opts.success({ needAuthorization: true, privacyContractName: '《示例小程序隐私保护指引》' }));
  wx.onNeedPrivacyAuthorization = jest.fn((listener) => {
    device.privacyListener = listener;
  });

  return {
    wx,
    device,
    service,
    storage,
    toasts: () => wx.showToast.mock.calls.map((c) => c[0].title),
  };
}

function allow(phone, kind = 'getPhoneNumber') {
  return { code: `pc:${phone}`, errMsg: `${kind}:ok` };
}

module.exports = { BASE, createService, installWx, allow, ok, err };

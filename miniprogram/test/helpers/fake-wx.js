// A mocked `wx` in front of a small fake of the wxlogin service, stateful enough to play the whole flow.
//
// The device: `device.openid` is the WeChat user on the phone; wx.login hands out login codes `lc:<openid>:<n>`;
// a phone button "allow" is `allow(phone)` → detail {code:'pc:<phone>', errMsg:'getPhoneNumber:ok'}.
// The service answers like the real one ({code:0,msg,data} or {code,msg,error} with a 4xx/5xx), and
// `service.inject(path, answer)` queues a one-off answer for the next call to `path`:
//   {statusCode, body} a canned answer; {fail: {errMsg, errno}} a network failure (wx.request's `fail`).

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
  const sessions = new Map(); // token → openid
  const usedLoginCodes = new Set();
  const usedPhoneCodes = new Set();
  const injected = new Map(); // path → [answer]
  const calls = []; // {method, path, data, header}
  let n = 0;

  const APPID = 'wx00000000000000a1';

  // Like the service, a login lands on the app the body names, else on the one app this fake serves.
  function session(openid, appid = APPID) {
    n += 1;
    const token = `tok-${n}`;
    sessions.set(token, openid);
    return {
      status: 'ok', accountId: `acc_${openid}`, appid, phone: users.get(openid), openid, token, expiresIn: 2592000,
    };
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

  function bearer(header) {
    const auth = (header && header.Authorization) || '';
    const token = auth.replace(/^Bearer /, '');
    return sessions.get(token);
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
    'POST /api/v1/logout'({ header }) {
      const auth = ((header && header.Authorization) || '').replace(/^Bearer /, '');
      sessions.delete(auth);
      return ok({});
    },
  };

  return {
    users,
    tickets,
    sessions,
    calls,
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
      const route = routes[`${req.method} ${path}`];
      if (!route) return err(404, 1004, 'not_found', '接口不存在');
      return route({ data: req.data || {}, header: req.header });
    },
  };
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

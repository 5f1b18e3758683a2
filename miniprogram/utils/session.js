// What the login keeps on the phone and the one call to the service: the storage keys and what is written under
// them, the user-facing texts with the AuthError every failure becomes, and `request` (wx.request as a promise).
// No flow and no module state: utils/auth.js decides when to call and what to keep. It uses nothing but `wx` and
// ../config, so the browser sandbox (crates/wxlogin/sandbox-ui) runs this very file next to auth.js.
//
// Rules kept here: only the tokens, the MASKED phone and which account and app the login landed on are stored
// (savePhone masks it); no phone number (nor code, nor token) goes to the console, as in auth.js.
const config = require('../config');

const STORAGE = {
  token: 'wxlogin.token', // the access token (or an earlier release's wxs_… session token)
  expiresAt: 'wxlogin.expiresAt', // the access token's end, ms since the epoch
  refreshToken: 'wxlogin.refreshToken', // wxr_…; absent for an earlier release's token
  refreshExpiresAt: 'wxlogin.refreshExpiresAt', // the refresh token's end (sliding: each refresh extends it)
  phone: 'wxlogin.phone', // masked: 138****8000
  accountId: 'wxlogin.accountId', // acc_…: the person, the same in every app of the product
  appid: 'wxlogin.appid', // the mini program the login landed on
};

// The user-facing texts, one place. Server errors show the service's own `msg` unless a row here overrides it.
const TEXT = {
  deny: '你已拒绝授权手机号，未登录',
  no_quota: '手机号快捷登录暂不可用，请稍后再试',
  privacy_undeclared: '小程序未声明手机号用途，暂无法登录',
  privacy_denied: '需同意隐私保护指引后才能使用手机号登录',
  no_code: '微信版本过低，请升级微信后重试',
  phone_fail: '获取手机号失败，请重试',
  login_fail: '微信登录失败，请重试',
  timeout: '网络超时，请稍后重试',
  network: '网络异常，请检查网络后重试',
  server: '服务异常，请稍后重试',
  unauthorized: '登录已过期，请重新登录',
  phone_code_invalid: '手机号验证已失效，请重新点击登录',
};

class AuthError extends Error {
  // kind: one of the TEXT keys ('server' for any answer with code ≠ 0). For 'server', `error` is the service's
  // snake_case id and `msg` its Chinese message.
  constructor(kind, { error, msg, statusCode, errno, errMsg } = {}) {
    super(error || errMsg || kind);
    this.name = 'AuthError';
    this.kind = kind;
    this.error = error;
    this.msg = msg;
    this.statusCode = statusCode;
    this.errno = errno;
    this.errMsg = errMsg;
  }

  get toast() {
    if (this.kind !== 'server') return TEXT[this.kind] || TEXT.server;
    return TEXT[this.error] || this.msg || TEXT.server;
  }
}

// 13800138000 → 138****8000 (first 3, ****, last 4). A value that is already masked is kept.
function maskPhone(phone) {
  const s = String(phone || '');
  if (s.indexOf('*') >= 0) return s;
  if (s.length < 8) return s ? '****' : '';
  return `${s.slice(0, 3)}****${s.slice(-4)}`;
}

// --- storage -----------------------------------------------------------------------------------------------

// The tokens of a login or refresh answer. An answer without a refreshToken (an earlier release) leaves none behind.
function saveTokens(data) {
  const now = Date.now();
  wx.setStorageSync(STORAGE.token, data.token);
  wx.setStorageSync(STORAGE.expiresAt, now + Number(data.expiresIn || 0) * 1000);
  if (data.refreshToken) {
    wx.setStorageSync(STORAGE.refreshToken, data.refreshToken);
    wx.setStorageSync(STORAGE.refreshExpiresAt, now + Number(data.refreshExpiresIn || 0) * 1000);
  } else {
    wx.removeStorageSync(STORAGE.refreshToken);
    wx.removeStorageSync(STORAGE.refreshExpiresAt);
  }
  wx.setStorageSync(STORAGE.accountId, data.accountId || '');
  wx.setStorageSync(STORAGE.appid, data.appid || '');
}

// A login answer: the tokens and the masked phone (a refresh answer has no phone and keeps the stored one).
function saveSession(data) {
  saveTokens(data);
  savePhone(data.phone);
}

// The phone, masked: the full number is never stored.
function savePhone(phone) {
  wx.setStorageSync(STORAGE.phone, maskPhone(phone));
}

function clearSession() {
  Object.keys(STORAGE).forEach((k) => wx.removeStorageSync(STORAGE[k]));
}

function expired(at, now) {
  return Boolean(at) && at <= now;
}

// The stored session, or null when there is none or it has expired: with a refresh token, until the refresh token
// ends (the access token is renewed on use); without one (an earlier release's token), until the token ends.
function getSession() {
  const token = wx.getStorageSync(STORAGE.token);
  const refreshToken = wx.getStorageSync(STORAGE.refreshToken) || '';
  const expiresAt = Number(wx.getStorageSync(STORAGE.expiresAt) || 0);
  const refreshExpiresAt = Number(wx.getStorageSync(STORAGE.refreshExpiresAt) || 0);
  const now = Date.now();
  if (!token || expired(refreshToken ? refreshExpiresAt : expiresAt, now)) return null;
  return {
    token,
    expiresAt,
    refreshToken,
    refreshExpiresAt,
    phone: wx.getStorageSync(STORAGE.phone) || '',
    accountId: wx.getStorageSync(STORAGE.accountId) || '',
    appid: wx.getStorageSync(STORAGE.appid) || '',
  };
}

// --- the one HTTP call -------------------------------------------------------------------------------------

// One call to the service. Resolves with the answer's `data`; rejects with an AuthError. wx.request calls `success`
// for every HTTP status, so a 4xx/5xx and any `code` ≠ 0 are server errors here; `fail` is the network's.
// `form` ({name: value}) sends a form-encoded body instead of JSON data (OAuth routes), encoded here so the body
// does not depend on how wx.request would serialise an object.
function request(path, { method = 'POST', data, token, form } = {}) {
  return new Promise((resolve, reject) => {
    const header = { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' };
    if (token) header.Authorization = `Bearer ${token}`;
    // With config.appid set (a web-view, or a test without WeChat's Referer), every route is told the app: the
    // login routes in the body too, the others (/me, /refresh, logout, revoke) only by this header (a service with
    // several apps needs one).
    if (config.appid) header['X-WX-AppId'] = config.appid;
    wx.request({
      url: String(config.baseUrl).replace(/\/+$/, '') + path,
      method,
      data: form ? formEncode(form) : data,
      header,
      timeout: config.requestTimeoutMs,
      success(res) {
        const body = res && res.data;
        const statusCode = res && res.statusCode;
        if (statusCode >= 400 || !body || typeof body !== 'object' || body.code !== 0) {
          const b = body && typeof body === 'object' ? body : {};
          reject(new AuthError('server', { error: b.error, msg: b.msg, statusCode }));
          return;
        }
        resolve(body.data || {});
      },
      fail(res) {
        const errMsg = (res && res.errMsg) || '';
        // errno 5 is the base library's timeout; older ones only say so in errMsg ("request:fail timeout").
        const timedOut = (res && res.errno === 5) || /time ?out/i.test(errMsg);
        reject(new AuthError(timedOut ? 'timeout' : 'network', { errMsg, errno: res && res.errno }));
      },
    });
  });
}

function formEncode(fields) {
  return Object.keys(fields).map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(fields[k])}`).join('&');
}

module.exports = {
  STORAGE,
  TEXT,
  AuthError,
  maskPhone,
  saveTokens,
  saveSession,
  savePhone,
  clearSession,
  getSession,
  request,
};

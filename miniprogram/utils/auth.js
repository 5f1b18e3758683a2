// The whole login flow as plain functions the pages call. It uses nothing but `wx`, ../config and ./session
// (what is stored, and the one HTTP call), so the browser sandbox (crates/wxlogin/sandbox-ui) runs these very files
// through a small `wx` shim: what is tested there ships here.
//
// Flows (config.loginFlow):
//   'silent'  launch(): wx.login → POST /api/v1/login. A known user gets a session with no tap; an unknown one gets a
//             ticket and the page shows the phone button; loginWithPhone(detail) sends the button's code with that
//             ticket to POST /api/v1/phone.
//   'oneCall' the seed's flow: loginWithPhone(detail) sends wx.login's code and the phone code to POST /api/getPhone.
//
// Tokens: a login answers a short-lived access token (a JWT, `token`, sent as Bearer) and a refresh token
// (`wxr_…`). authorizedRequest() refreshes (POST /api/v1/refresh) shortly before the access token expires or on a
// 401, one refresh shared by every caller; each refresh rotates the refresh token. A token of an earlier release
// (`wxs_…`, no refresh token) is used as before until it expires, then replaced by a silent login.
//
// Rules kept here: no phone number (nor code, nor token) goes to the console; every failure becomes one toast
// (showError), and the top-level flows never throw. What may be stored (the tokens, the MASKED phone, which account
// and app the login landed on) is ./session's rule: everything written goes through it.
const config = require('../config');
const {
  STORAGE, TEXT, AuthError, maskPhone, saveTokens, saveSession, savePhone, clearSession, getSession, request,
} = require('./session');

// A ticket is treated as gone this long before the service's expiresIn, so a tap just before the end does not make
// the service answer ticket_invalid.
const TICKET_MARGIN_MS = 10 * 1000;

// An access token this close to its end is refreshed before use, so it does not expire on the way to the service.
const REFRESH_MARGIN_MS = 60 * 1000;

// Error ids of the service (the `error` field) that this file reacts to.
const LOGIN_CODE_ERRORS = ['login_code_invalid', 'login_code_used'];

// The button's e.detail, or the <phone-number> component's. Under Skyline the detail has been seen nested one level
// deeper (e.detail.detail.code): accept both.
function normalizePhoneDetail(detail) {
  let d = detail || {};
  if (d.detail && typeof d.detail === 'object' && d.errMsg === undefined && d.code === undefined) d = d.detail;
  return { code: d.code, errMsg: d.errMsg || '', errno: d.errno };
}

// The phone code from a button detail, or the AuthError saying why there is none. The errnos come first: a no-quota
// or privacy failure also carries a `fail` errMsg.
function phoneCodeFrom(detail) {
  const d = normalizePhoneDetail(detail);
  const errno = Number(d.errno);
  const info = { errno: d.errno, errMsg: d.errMsg };
  if (errno === 1400001) throw new AuthError('no_quota', info);
  if (errno === 112) throw new AuthError('privacy_undeclared', info);
  if (errno === 104 || errno === 103) throw new AuthError('privacy_denied', info);
  // 'getPhoneNumber:fail user deny' (iOS, DevTools) and 'getPhoneNumber:fail:user deny' (Android); match the word.
  if (/deny|cancel/i.test(d.errMsg)) throw new AuthError('deny', info);
  if (/:fail/i.test(d.errMsg)) throw new AuthError('phone_fail', info);
  // A success without a code: base library < 2.21.2 only gives encryptedData/iv, which this template does not use.
  if (!d.code) throw new AuthError('no_code', info);
  return d.code;
}

function showError(err) {
  const title = err instanceof AuthError ? err.toast : TEXT.server;
  wx.showToast({ title, icon: 'none', duration: 2500 });
}

// --- wx calls as promises ----------------------------------------------------------------------------------

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      timeout: config.requestTimeoutMs,
      success(res) {
        if (res && res.code) resolve(res.code);
        else reject(new AuthError('login_fail', { errMsg: res && res.errMsg }));
      },
      fail(res) {
        reject(new AuthError('login_fail', { errMsg: res && res.errMsg }));
      },
    });
  });
}

// The body of a login route: `fields`, plus config.appid when one is set (otherwise the service tells the app by the
// Referer WeChat sends, or serves only one).
function loginBody(fields) {
  return config.appid ? Object.assign({}, fields, { appid: config.appid }) : fields;
}

// A body carrying a phone code also says which button gave it when it is the real-time one (0.04 元, not 0.03), so
// the service's /metrics counts the bill by kind; quick is the service's default and is left out.
function phoneBody(fields) {
  const body = loginBody(fields);
  return config.phoneButtonKind === 'getRealtimePhoneNumber' ? Object.assign({}, body, { phoneKind: 'realtime' }) : body;
}

function isLoginCodeError(err) {
  return err instanceof AuthError && LOGIN_CODE_ERRORS.indexOf(err.error) >= 0;
}

// The access token is not (or no longer) valid. Keyed on the error id: the service answers other 401s too
// (ticket_invalid, refresh_reused), which are handled on their own.
function isUnauthorized(err) {
  return err instanceof AuthError && (err.error === 'unauthorized' || (err.statusCode === 401 && !err.error));
}

// Runs `call(loginCode)` with a fresh wx.login code; when the service says that code is invalid or used (expired
// in a background tab, or used by a double launch), once more with another fresh code.
async function withLoginCode(call) {
  try {
    return await call(await wxLogin());
  } catch (err) {
    if (!isLoginCodeError(err)) throw err;
    return call(await wxLogin());
  }
}

// --- the flows ---------------------------------------------------------------------------------------------

let ticket = null; // { value, expiresAt } from the last phone_required answer; memory only, it lives 5 minutes
let launching = null; // the launch() in flight
let phoneInFlight = false;

function sessionResult(data) {
  saveSession(data);
  ticket = null;
  return { status: 'ok', phone: maskPhone(data.phone) };
}

// wx.login → POST /api/v1/login. Resolves {status:'ok', phone} or {status:'phone_required'}; throws AuthError.
async function silentLogin() {
  const data = await withLoginCode((loginCode) => request('/api/v1/login', { data: loginBody({ loginCode }) }));
  if (data.status === 'ok') return sessionResult(data);
  if (data.status === 'phone_required' && data.ticket) {
    // The service has no account for this WeChat user: a stored token is someone else's past, drop it.
    clearSession();
    const ttl = Number(data.expiresIn || 300) * 1000;
    ticket = { value: data.ticket, expiresAt: Date.now() + ttl - TICKET_MARGIN_MS };
    return { status: 'phone_required' };
  }
  throw new AuthError('server', { error: 'unexpected_answer' });
}

// 'oneCall' at launch: the seed asked for the phone on every new install; a stored, still valid session spares
// that. Renewed by refresh only: this flow never calls /api/v1/login, so a session the service ended asks for the
// phone again.
async function launchOneCall() {
  if (!getSession()) return { status: 'phone_required' };
  try {
    const me = await withAccessToken('/api/v1/me', { method: 'GET' }, refreshSession);
    savePhone(me.phone);
    return { status: 'ok', phone: maskPhone(me.phone) };
  } catch (err) {
    if (!isUnauthorized(err) && err.kind !== 'unauthorized') throw err;
    clearSession();
    return { status: 'phone_required' };
  }
}

// At app launch. Resolves {status:'ok', phone} (logged in, no tap), {status:'phone_required'} (show the phone
// button) or {status:'failed', error} (toast shown; offer a retry). Never throws. Concurrent calls share one run.
function launch() {
  if (launching) return launching;
  launching = (async () => {
    try {
      return config.loginFlow === 'oneCall' ? await launchOneCall() : await silentLogin();
    } catch (err) {
      showError(err);
      return { status: 'failed', error: err };
    } finally {
      launching = null;
    }
  })();
  return launching;
}

// POST /api/v1/phone with the ticket. A ticket that expired while the user hesitated is not an error: a fresh
// silent login gets a new one (the phone code was not redeemed, so it is resent and the billed tap not wasted), and
// if that silent login already knows the user, we are done.
async function bindPhoneWithTicket(phoneCode) {
  let refreshed = false;
  if (!ticket || ticket.expiresAt <= Date.now()) {
    refreshed = true;
    const r = await silentLogin();
    if (r.status === 'ok') return r;
  }
  try {
    return sessionResult(await request('/api/v1/phone', { data: phoneBody({ phoneCode, ticket: ticket.value }) }));
  } catch (err) {
    if (refreshed || !(err instanceof AuthError) || err.error !== 'ticket_invalid') throw err;
    const r = await silentLogin();
    if (r.status === 'ok') return r;
    return sessionResult(await request('/api/v1/phone', { data: phoneBody({ phoneCode, ticket: ticket.value }) }));
  }
}

// The seed's one call: POST /api/getPhone {phoneCode, loginCode}.
async function loginOneCall(phoneCode) {
  const data = await withLoginCode(
    (loginCode) => request('/api/getPhone', { data: phoneBody({ phoneCode, loginCode }) }),
  );
  return sessionResult(data);
}

// The phone button's (or <phone-number>'s) e.detail → logged in. Resolves {status:'ok', phone},
// {status:'denied'}, {status:'failed', error} or {status:'busy'} (a second tap while the first is in flight —
// a quick double tap can produce a deny on the second tap, which must not undo the first). Never throws.
async function loginWithPhone(detail) {
  if (phoneInFlight) return { status: 'busy' };
  phoneInFlight = true;
  try {
    const phoneCode = phoneCodeFrom(detail);
    return config.loginFlow === 'oneCall' ? await loginOneCall(phoneCode) : await bindPhoneWithTicket(phoneCode);
  } catch (err) {
    showError(err);
    return { status: err instanceof AuthError && err.kind === 'deny' ? 'denied' : 'failed', error: err };
  } finally {
    phoneInFlight = false;
  }
}

// --- access token renewal ----------------------------------------------------------------------------------

// The renewal in flight, one for all callers: a refresh token works once, so two callers refreshing with it would
// have the service see a reuse and end the session.
let refreshing = null; // POST /api/v1/refresh
let relogging = null; // the silent login that replaces a refused refresh

function renewalInFlight() {
  return Boolean(refreshing || relogging);
}

// POST /api/v1/refresh, shared. Resolves true when new tokens are stored; false when there is no refresh token or
// the service refused it (401: refresh_reused, refresh_invalid: the session is over), the stored tokens then cleared.
// A network error or a 5xx rejects and keeps the tokens: the next call tries again.
function refreshSession() {
  if (!refreshing) refreshing = refreshOnce().finally(() => { refreshing = null; });
  return refreshing;
}

async function refreshOnce() {
  const session = getSession();
  if (session && session.refreshToken) {
    try {
      saveTokens(await request('/api/v1/refresh', { data: { refreshToken: session.refreshToken } }));
      return true;
    } catch (err) {
      if (!(err instanceof AuthError) || err.statusCode !== 401) throw err;
    }
  }
  clearSession();
  return false;
}

// A refresh, else a silent login (shared as well). Resolves true when there is a session afterwards.
async function renewSession() {
  if (await refreshSession()) return true;
  if (!relogging) relogging = silentLogin().finally(() => { relogging = null; });
  return (await relogging).status === 'ok';
}

// An access token to send: the stored one, renewed first when it is gone, ends within REFRESH_MARGIN_MS (only
// with a refresh token: an earlier release's token is used to its end) or a renewal is under way.
async function accessToken(renew) {
  const session = getSession();
  const stale = session && session.refreshToken && session.expiresAt - Date.now() <= REFRESH_MARGIN_MS;
  if (session && !stale && !renewalInFlight()) return session.token;
  if (!(await renew())) throw new AuthError('unauthorized');
  return getSession().token;
}

// `request` with the access token. On a 401 the token is renewed once (`renew`) and the call repeated once; a call
// whose token another caller already renewed while it was on the wire is repeated with the new one, no second
// renewal. Fails with kind 'unauthorized' when there is no session to be had (the page goes back to login).
async function withAccessToken(path, options, renew) {
  const token = await accessToken(renew);
  try {
    return await request(path, Object.assign({}, options, { token }));
  } catch (err) {
    if (!isUnauthorized(err)) throw err;
    const current = getSession();
    if (renewalInFlight() || (current && current.token === token)) {
      if (!(await renew())) throw new AuthError('unauthorized');
    } else if (!current) {
      throw new AuthError('unauthorized'); // ended meanwhile (a refused renewal, a logout): do not log back in
    }
    return request(path, Object.assign({}, options, { token: getSession().token }));
  }
}

// A call with the access token, renewed by refresh or, when the session is over, by a silent login.
function authorizedRequest(path, options = {}) {
  return withAccessToken(path, options, renewSession);
}

// GET /api/v1/me → {accountId, appid, openid, unionid, phone (masked), identities, createdAt, updatedAt}; refreshes
// the stored masked phone.
async function fetchMe() {
  const me = await authorizedRequest('/api/v1/me', { method: 'GET' });
  savePhone(me.phone);
  return Object.assign({}, me, { phone: maskPhone(me.phone) });
}

// A logged-in user verifies another number: POST /api/v1/phone with the Bearer token instead of a ticket.
// Resolves like loginWithPhone. Never throws.
async function changePhone(detail) {
  if (phoneInFlight) return { status: 'busy' };
  phoneInFlight = true;
  try {
    const phoneCode = phoneCodeFrom(detail);
    if (!getSession()) throw new AuthError('unauthorized');
    // A 401 comes before the phone code is redeemed, so the retry after a renewal resends the same code.
    return sessionResult(await authorizedRequest('/api/v1/phone', { data: phoneBody({ phoneCode }) }));
  } catch (err) {
    if (isUnauthorized(err)) clearSession();
    showError(err);
    return { status: err instanceof AuthError && err.kind === 'deny' ? 'denied' : 'failed', error: err };
  } finally {
    phoneInFlight = false;
  }
}

// Logout: POST /oauth2/revoke with the refresh token (RFC 7009, form-encoded), which ends the session at once; an
// earlier release's token goes to POST /api/v1/logout with Bearer. Then the storage is cleared.
async function logout() {
  // A renewal in flight would store tokens after the clear below: let it land, so its tokens are the ones revoked.
  if (renewalInFlight()) await Promise.all([refreshing, relogging]).catch(() => {});
  const session = getSession();
  try {
    if (session && session.refreshToken) {
      await request('/oauth2/revoke', { form: { token: session.refreshToken, token_type_hint: 'refresh_token' } });
    } else if (session) {
      await request('/api/v1/logout', { token: session.token });
    }
  } catch (err) {
    // Best effort: the user asked to be logged out, so the storage is cleared even when the service could not be
    // told (an unrevoked refresh token then expires on its own).
  } finally {
    clearSession();
    ticket = null;
  }
}

// What the user confirms before the account is deleted.
const DELETE_PROMPT = {
  title: '注销账号',
  content: '注销后，账号及其手机号、登录记录将被删除且无法恢复；再次登录将成为新账号。',
  confirmText: '注销',
};

// 注销账号 (PIPL's right to deletion): after the user confirms, DELETE /api/v1/me deletes the account and everything of
// it on the service (the phone, every app's identity, every session), and the storage is cleared. Resolves
// {status: 'deleted' | 'cancelled' | 'failed'}; never throws.
async function deleteAccount() {
  const confirmed = await new Promise((resolve) => {
    wx.showModal({
      title: DELETE_PROMPT.title,
      content: DELETE_PROMPT.content,
      confirmText: DELETE_PROMPT.confirmText,
      confirmColor: '#e64340',
      success: (res) => resolve(Boolean(res && res.confirm)),
      fail: () => resolve(false),
    });
  });
  if (!confirmed) return { status: 'cancelled' };
  try {
    if (!getSession()) throw new AuthError('unauthorized');
    await authorizedRequest('/api/v1/me', { method: 'DELETE' });
    clearSession();
    ticket = null;
    return { status: 'deleted' };
  } catch (err) {
    if (isUnauthorized(err)) clearSession();
    showError(err);
    return { status: 'failed', error: err };
  }
}

module.exports = {
  launch,
  deleteAccount,
  loginWithPhone,
  changePhone,
  fetchMe,
  logout,
  getSession,
  authorizedRequest,
  silentLogin,
  maskPhone,
  normalizePhoneDetail,
  phoneCodeFrom,
  showError,
  AuthError,
  TEXT,
  STORAGE,
};
